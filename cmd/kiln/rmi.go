package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRmiCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images from the local store",
		Long: `Rmi removes each IMAGE: a name removes that name (and the image, unless
another name keeps it); a digest (sha256:… in full, or at least its first
12 hex digits) removes an untagged image, or an image of one name with its
name. kiln rmi $(kiln images -q --filter dangling=true) removes every
untagged image, as docker image prune does.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if err := s.Remove(cmd.Context(), name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(a.stdout, "removed %s\n", name)
			}
			return errors.Join(errs...)
		},
	}
}
