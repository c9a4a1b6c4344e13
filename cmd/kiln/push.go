package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/image/store"
)

// registryFlags are the global flags that say how to reach registries.
type registryFlags struct {
	caFile   string
	insecure []string
}

// addRegistryFlags adds the registry flags to the root command.
func addRegistryFlags(root *cobra.Command, a *app) {
	f := root.PersistentFlags()
	f.StringVar(&a.reg.caFile, "ca-file", "", "PEM `FILE` of CA certificates trusted for registries, besides the system's")
	f.StringArrayVar(&a.reg.insecure, "insecure-registry", nil, "reach registry `HOST[:PORT]` over plain HTTP or unverified TLS (repeatable; localhost and 127.0.0.1 may always use HTTP)")
}

// registry returns a registry client configured by the global flags and
// the registries.conf that registry.ConfPath finds.
func (a *app) registry() (*registry.Client, error) {
	conf, err := registry.LoadConf(registry.ConfPath())
	if err != nil {
		return nil, err
	}
	return registry.New(registry.Options{CAFile: a.reg.caFile, Insecure: a.reg.insecure, Conf: conf})
}

func newPushCommand(a *app) *cobra.Command {
	var compression string
	c := &cobra.Command{
		Use:   "push IMAGE [DEST]",
		Short: "Write an image to an OCI layout, a docker archive or a registry",
		Long: `Push writes a local image to DEST:
  oci-layout:DIR[:TAG]          an OCI image layout (created or appended to)
  docker-archive:FILE[:NAME:TAG] a tarball for docker load / podman load
  REGISTRY/REPO[:TAG]           a registry; credentials from kiln login,
                                ~/.docker/config.json and its credential helpers
An image index (a build for several platforms) goes whole to an OCI layout
or a registry, each blob once; a docker archive gets this machine's image.
IMAGE is a name of the local store or a digest (sha256:… in full, or at
least its first 12 hex digits). DEST defaults to IMAGE's own name, pushed
to its registry; a docker archive without NAME:TAG names the image
IMAGE, unless IMAGE is a digest. To a registry,
layers go up to 4 at once, blobs the registry has are not sent again, and
failed requests (5xx, broken connections) are retried with backoff; kiln
prints DEST's repository@digest.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			comp, err := store.ParseCompression(compression)
			if err != nil {
				return err
			}
			s, err := a.store(ctx)
			if err != nil {
				return err
			}
			var idx v1.ImageIndex
			var img v1.Image
			if !store.IsTransport(args[0]) {
				var ok bool
				idx, ok, err = s.Index(ctx, args[0])
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				if !ok || len(args) == 2 && strings.HasPrefix(args[1], "docker-archive:") {
					idx = nil // a docker archive holds one image: this machine's
				}
			}
			if idx == nil {
				if img, err = s.Image(ctx, args[0]); err != nil {
					return err
				}
			}
			src, err := s.Name(ctx, args[0])
			if err != nil {
				return err
			}
			dest := args[0]
			if len(args) == 2 {
				dest = args[1]
			} else if src == "" {
				return fmt.Errorf("pushing %s: an image given by digest has no name to push to: give DEST", args[0])
			}
			if idx != nil {
				return a.pushIndexTo(ctx, idx, dest, comp)
			}
			if img, err = s.Recompress(ctx, img, comp); err != nil {
				return fmt.Errorf("pushing %s: %w", dest, err)
			}
			if store.IsTransport(dest) {
				var names []string
				if src != "" {
					names = []string{src}
				}
				return store.Export(ctx, img, dest, names...)
			}
			return a.pushTo(ctx, dest, img, func(rc *registry.Client, ref name.Reference) error { return rc.Push(ctx, img, ref) })
		},
	}
	c.Flags().StringVar(&compression, "compression", string(store.Gzip), "compression of the layers pushed: gzip or zstd (recompressed from the store's gzip)")
	return c
}

// pushIndexTo is kiln push of idx, an image index of the store, to dest:
// an OCI layout or a registry.
func (a *app) pushIndexTo(ctx context.Context, idx v1.ImageIndex, dest string, comp store.Compression) error {
	if comp != store.Gzip {
		return badInput(fmt.Errorf("pushing %s: --compression %s of an image index is not supported: push one platform's image, or gzip", dest, comp))
	}
	if rest, ok := strings.CutPrefix(dest, "oci-layout:"); ok {
		dir, tag, _ := strings.Cut(rest, ":")
		return store.ExportIndex(ctx, idx, dir, cmp.Or(tag, "latest"))
	}
	return a.pushTo(ctx, dest, idx, func(rc *registry.Client, ref name.Reference) error { return rc.PushIndex(ctx, idx, ref) })
}

// pushTo pushes m (an image or an index) to the registry dest names with
// push, and prints dest's repository@digest.
func (a *app) pushTo(ctx context.Context, dest string, m interface{ Digest() (v1.Hash, error) }, push func(*registry.Client, name.Reference) error) error {
	rc, err := a.registry()
	if err != nil {
		return err
	}
	ref, err := rc.Reference(dest)
	if err != nil {
		return fmt.Errorf("push destination: %w", err)
	}
	if err := push(rc, ref); err != nil {
		return fmt.Errorf("pushing %s: %w", dest, err)
	}
	d, err := m.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s@%s\n", ref.Context(), d)
	return err
}
