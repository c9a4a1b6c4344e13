package main

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
)

func newPullCommand(a *app) *cobra.Command {
	var tag string
	c := &cobra.Command{
		Use:   "pull REF",
		Short: "Copy an image from a registry into the local store",
		Long: `Pull fetches the image REF names (for an image index, its linux image
for this machine's architecture) into the local store, named REF (or -t
NAME), and prints its digest. Blobs the store has are not fetched again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rc, err := a.registry()
			if err != nil {
				return err
			}
			ref, err := rc.Reference(args[0])
			if err != nil {
				return err
			}
			local := tag
			if local == "" {
				if _, ok := ref.(name.Digest); ok {
					return fmt.Errorf("pulling %s: a reference by digest needs a local name: pass -t NAME", args[0])
				}
				local = args[0]
			}
			s, err := a.store(ctx)
			if err != nil {
				return err
			}
			img, err := rc.Image(ctx, ref)
			if err != nil {
				return fmt.Errorf("pulling %s: %w", args[0], err)
			}
			d, err := s.Tag(ctx, img, local)
			if err != nil {
				return fmt.Errorf("pulling %s: %w", args[0], err)
			}
			_, err = fmt.Fprintln(a.stdout, d)
			return err
		},
	}
	c.Flags().StringVarP(&tag, "tag", "t", "", "local `NAME` of the image (default REF)")
	return c
}
