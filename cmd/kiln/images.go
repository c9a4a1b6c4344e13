package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/image/store"
)

func newImagesCommand(a *app) *cobra.Command {
	var quiet bool
	var filter string
	c := &cobra.Command{
		Use:   "images",
		Short: "List the images in the local store",
		Long: `Images lists the images of the local store: named ones by name, then the
untagged ones (NAME <none>: a build without -t, a pull without a name),
newest first, which stay until kiln rmi removes them by digest. An image
index (a build for several platforms) is followed by a line for each
platform's image, with its own digest and size.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dangling, err := danglingFilter(filter)
			if err != nil {
				return err
			}
			s, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			list, err := s.List(cmd.Context())
			if err != nil {
				return err
			}
			if dangling != nil {
				list = slices.DeleteFunc(list, func(im store.Summary) bool { return (im.Name == "") != *dangling })
			}
			if quiet {
				for _, im := range list {
					fmt.Fprintln(a.stdout, cmp.Or(im.Name, im.Digest.String()))
				}
				return nil
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tDIGEST\tSIZE\tCREATED")
			for _, im := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cmp.Or(im.Name, "<none>"), im.Digest, humanSize(im.Size), im.Created.UTC().Format(time.RFC3339))
				if len(im.Platforms) == 0 {
					continue
				}
				// an image index: a line for each platform's image
				pis, err := s.Platforms(cmd.Context(), cmp.Or(im.Name, im.Digest.String()))
				if err != nil {
					return err
				}
				for _, pi := range pis {
					d, size, created, err := imageSummary(pi.Image)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "  └ %s\t%s\t%s\t%s\n", pi.Platform, d, humanSize(size), created.UTC().Format(time.RFC3339))
				}
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names (the digests of untagged images)")
	c.Flags().StringVarP(&filter, "filter", "f", "", "dangling=true: only the untagged images; dangling=false: only the named ones")
	return c
}

// imageSummary is the digest, size (manifest, config and layers) and
// creation time of img.
func imageSummary(img v1.Image) (v1.Hash, int64, time.Time, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, 0, time.Time{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return v1.Hash{}, 0, time.Time{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Hash{}, 0, time.Time{}, err
	}
	size += m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, 0, time.Time{}, err
	}
	return d, size, cf.Created.Time, nil
}

// danglingFilter parses --filter: nil when empty, else whether the list
// keeps the untagged images (dangling=true) or the named ones.
func danglingFilter(f string) (*bool, error) {
	if f == "" {
		return nil, nil
	}
	v, ok := strings.CutPrefix(f, "dangling=")
	b, err := strconv.ParseBool(v)
	if !ok || err != nil {
		return nil, fmt.Errorf("--filter %q: want dangling=true or dangling=false", f)
	}
	return &b, nil
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
