package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/image/store"
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
		Short: "Re-hash every cached layer, blob and unpacked layer directory; with --repair, drop the bad ones",
		Long: `Verify re-hashes every cache record's layer, every blob of the store and
every unpacked layer directory (against the tree digest kept when it was
unpacked). With --repair it deletes the records whose layers do not match,
removes the corrupt blobs (images that use one must be pulled or built
again) and removes the changed layer directories, which are unpacked again
from their blobs when next used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.store(ctx)
			if err != nil {
				return err
			}
			cc, err := cache.Open(ctx, s)
			if err != nil {
				return err
			}
			v, err := verifyStore(ctx, a.stdout, s, cc, repair)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d records, %d blobs, %d layer directories checked, %d bad\n", v.records, v.blobs, v.dirs, v.bad)
			if v.bad > 0 && !repair {
				return exitError{1}
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&repair, "repair", false, "delete the records, blobs and layer directories that do not verify")
	c.AddCommand(verify)
	c.AddCommand(newCacheExportCommand(a), newCacheImportCommand(a))
	return c
}

// verified counts what verifyStore checked, and the bad ones.
type verified struct{ records, blobs, dirs, bad int }

// verifyStore checks every cache record, blob and layer directory of s,
// printing one line per bad one to w (and, with repair, what it did about
// it).
func verifyStore(ctx context.Context, w io.Writer, s *store.Store, cc *cache.Cache, repair bool) (verified, error) {
	var v verified
	// check runs one verification; a failure is a bad item unless ctx is
	// done, and with repair the item is fixed.
	check := func(what string, verify func() error, fix func() error, fixed string) error {
		err := verify()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		v.bad++
		fmt.Fprintf(w, "%s: %v\n", what, err)
		if !repair {
			return nil
		}
		if err := fix(); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: %s\n", what, fixed)
		return nil
	}
	keys, err := cc.Keys(ctx)
	if err != nil {
		return v, err
	}
	for _, k := range keys {
		v.records++
		if err := check("record "+k.String()[:12], func() error { return cc.Verify(ctx, k) },
			func() error { return cc.Delete(ctx, k) }, "deleted"); err != nil {
			return v, err
		}
	}
	blobs, err := s.Blobs(ctx)
	if err != nil {
		return v, err
	}
	for _, d := range blobs {
		v.blobs++
		if err := check("blob "+d.Hex[:12], func() error { return s.VerifyBlob(ctx, d) },
			func() error { return s.RemoveBlob(d) }, "removed (pull or build again the images that use it)"); err != nil {
			return v, err
		}
	}
	dirs, err := s.LayerDirIDs(ctx)
	if err != nil {
		return v, err
	}
	for _, id := range dirs {
		v.dirs++
		if err := check("layer directory "+id.Hex[:12], func() error { return s.VerifyLayerDir(ctx, id) },
			func() error { return s.RemoveLayerDir(id) }, "removed, to be unpacked again from its blob (a step's layer kept as its directory only is gone: the step runs again)"); err != nil {
			return v, err
		}
	}
	return v, nil
}
