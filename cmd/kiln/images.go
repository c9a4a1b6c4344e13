package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newImagesCommand(a *app) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "images",
		Short: "List the images in the local store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			list, err := s.List(cmd.Context())
			if err != nil {
				return err
			}
			if quiet {
				for _, im := range list {
					fmt.Fprintln(a.stdout, im.Name)
				}
				return nil
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tDIGEST\tSIZE\tCREATED")
			for _, im := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", im.Name, im.Digest, humanSize(im.Size), im.Created.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	return c
}

// humanSize prints n bytes in decimal units, as docker images does.
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, units := float64(n), "kMGTPE"
	i := -1
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.3g%cB", f, units[i])
}
