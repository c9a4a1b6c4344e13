package main

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/image/store"
)

func newPullCommand(a *app) *cobra.Command {
	var tag, plat string
	c := &cobra.Command{
		Use:   "pull REF",
		Short: "Copy an image from a registry, an OCI layout or a docker archive into the local store",
		Long: `Pull fetches the image REF names into the local store and prints its
digest. REF is what kiln run takes:
  REGISTRY/REPO[:TAG|@DIGEST]     a registry (for an image index, its linux
                                  image for this machine's architecture);
                                  named REF
  oci-layout:DIR[:TAG]            an OCI image layout (for an image index,
                                  its image for this machine, or
                                  --platform's); kept untagged
  docker-archive:FILE[:NAME:TAG]  a docker save tarball; named after the
                                  image's RepoTags (or NAME:TAG), untagged
                                  if it has none
-t NAME names it NAME instead. An untagged image is found by the digest
pull prints, until kiln rmi removes it. Blobs the store has are not
fetched again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if store.IsTransport(args[0]) {
				return a.pullTransport(ctx, args[0], tag, plat)
			}
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
			tagFn := s.Tag
			if plat != "" {
				// One platform's image of an index: added to what the
				// local name holds, beside other platforms' images.
				p, perr := platform.Parse(plat)
				if perr != nil {
					return badInput(fmt.Errorf("--platform: %w", perr))
				}
				img, err = rc.ImageFor(ctx, ref, p.OCI())
				if err == nil {
					err = checkPlatform(args[0], img, p)
				}
				tagFn = s.TagPlatform
			}
			if err != nil {
				return fmt.Errorf("pulling %s: %w", args[0], err)
			}
			d, err := tagFn(ctx, img, local)
			if err != nil {
				return fmt.Errorf("pulling %s: %w", args[0], err)
			}
			_, err = fmt.Fprintln(a.stdout, d)
			return err
		},
	}
	c.Flags().StringVarP(&tag, "tag", "t", "", "local `NAME` of the image (default REF)")
	c.Flags().StringVar(&plat, "platform", "", "pull the image for os/arch[/variant] of an image index, of a registry or an OCI layout (default: this machine's)")
	return c
}

// pullTransport copies the image of an oci-layout: or docker-archive:
// reference into the store, named tag, else as the source names it, else
// untagged, and prints its digest.
//
// With --platform plat, the image is that platform's (of an OCI layout's
// image index, its image for plat), added to what the name holds as
// kiln pull --platform adds one from a registry.
func (a *app) pullTransport(ctx context.Context, ref, tag, plat string) error {
	names := []string{tag}
	if tag == "" {
		var err error
		if names, err = store.SourceNames(ref); err != nil {
			return fmt.Errorf("pulling %s: %w", ref, err)
		}
	}
	for _, n := range names {
		if _, err := store.ParseTag(n); err != nil {
			return fmt.Errorf("pulling %s: %w", ref, err)
		}
	}
	s, err := a.store(ctx)
	if err != nil {
		return err
	}
	img, err := s.Resolve(ctx, ref)
	tagFn := s.Tag
	if plat != "" {
		p, perr := platform.Parse(plat)
		if perr != nil {
			return badInput(fmt.Errorf("--platform: %w", perr))
		}
		if img, err = s.ResolveFor(ctx, ref, p); err == nil {
			err = checkPlatform(ref, img, p)
		}
		tagFn = s.TagPlatform
	}
	if err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	var d v1.Hash
	if len(names) == 0 {
		d, err = s.Keep(ctx, img)
	}
	for _, n := range names {
		if d, err = tagFn(ctx, img, n); err != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	_, err = fmt.Fprintln(a.stdout, d)
	return err
}
