package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/manifest"
)

func newCacheCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "cache", Short: "Look at and prune the build cache"}
	open := func(cmd *cobra.Command) (*cache.Cache, error) {
		s, err := a.store(cmd.Context())
		if err != nil {
			return nil, err
		}
		return cache.Open(cmd.Context(), s)
	}
	list := func(cmd *cobra.Command) ([]cache.Entry, error) {
		cc, err := open(cmd)
		if err != nil {
			return nil, err
		}
		return cc.List(cmd.Context())
	}
	c.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the cache records, most recently used first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, err := list(cmd)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "KEY\tSIZE\tLAST USED\tSTEP")
			for _, e := range entries {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Key.String()[:12], humanSize(e.Layer.Size), e.LastUsed.UTC().Format(time.RFC3339), e.Step)
			}
			return w.Flush()
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "du",
		Short: "Print how much the cache's layers hold",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, err := list(cmd)
			if err != nil {
				return err
			}
			var total int64
			for _, e := range entries {
				total += e.Layer.Size
			}
			_, err = fmt.Fprintf(a.stdout, "%d records, %s of layers\n", len(entries), humanSize(total))
			return err
		},
	})
	var keep, filter string
	prune := &cobra.Command{
		Use:   "prune [--keep-storage SIZE] [--filter until=DURATION]",
		Short: "Drop least recently used records until the cache fits; their layers go with the next collection",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o := cache.PruneOptions{KeepBytes: -1}
			if keep != "" {
				if keep == "0" {
					o.KeepBytes = 0
				} else {
					b, err := manifest.ParseBytes(keep)
					if err != nil {
						return fmt.Errorf("--keep-storage: %w", err)
					}
					o.KeepBytes = b
				}
			}
			if filter != "" {
				v, ok := strings.CutPrefix(filter, "until=")
				d, err := time.ParseDuration(v)
				if !ok || err != nil || d <= 0 {
					return fmt.Errorf("--filter %q: want until=DURATION, e.g. until=24h", filter)
				}
				o.Until = d
			}
			if keep == "" && filter == "" {
				o.KeepBytes = 0 // prune everything, as docker builder prune -a
			}
			s, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			cc, err := cache.Open(cmd.Context(), s)
			if err != nil {
				return err
			}
			removed, err := cc.Prune(cmd.Context(), o)
			var freed int64
			for _, e := range removed {
				freed += e.Layer.Size
			}
			fmt.Fprintf(a.stdout, "removed %d records (%s of layers)\n", len(removed), humanSize(freed))
			if cerr := s.Collect(cmd.Context()); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return err
		},
	}
	prune.Flags().StringVar(&keep, "keep-storage", "", "keep the most recently used records up to SIZE of layers (e.g. 10g)")
	prune.Flags().StringVar(&filter, "filter", "", "until=DURATION: drop records not used for that long")
	c.AddCommand(prune)
	var repair bool
	verify := &cobra.Command{
		Use:   "verify [--repair]",
		Short: "Re-hash every cached layer; with --repair, delete the records whose layers do not match",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, err := open(cmd)
			if err != nil {
				return err
			}
			keys, err := cc.Keys(cmd.Context())
			if err != nil {
				return err
			}
			bad := 0
			for _, k := range keys {
				if err := cc.Verify(cmd.Context(), k); err != nil {
					bad++
					fmt.Fprintf(a.stdout, "%s: %v\n", k.String()[:12], err)
					if repair {
						if err := cc.Delete(cmd.Context(), k); err != nil {
							return err
						}
						fmt.Fprintf(a.stdout, "%s: deleted\n", k.String()[:12])
					}
				}
			}
			fmt.Fprintf(a.stdout, "%d records checked, %d bad\n", len(keys), bad)
			if bad > 0 && !repair {
				return exitError{1}
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&repair, "repair", false, "delete the records whose layers do not verify")
	c.AddCommand(verify)
	c.AddCommand(newCacheExportCommand(a), newCacheImportCommand(a))
	return c
}
