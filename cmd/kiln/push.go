package main

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/store"
)

func newPushCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "push IMAGE [DEST]",
		Short: "Write an image to an OCI layout, a docker archive or a registry",
		Long: `Push writes a local image to DEST:
  oci-layout:DIR[:TAG]          an OCI image layout (created or appended to)
  docker-archive:FILE[:NAME:TAG] a tarball for docker load / podman load
  REGISTRY/REPO[:TAG]           a registry; credentials from ~/.docker/config.json
DEST defaults to IMAGE's own name, pushed to its registry.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.store(ctx)
			if err != nil {
				return err
			}
			img, err := s.Image(ctx, args[0])
			if err != nil {
				return err
			}
			dest := args[0]
			if len(args) == 2 {
				dest = args[1]
			}
			if strings.HasPrefix(dest, "oci-layout:") || strings.HasPrefix(dest, "docker-archive:") {
				return store.Export(ctx, img, dest)
			}
			ref, err := name.ParseReference(dest)
			if err != nil {
				return fmt.Errorf("push destination %q: %w", dest, err)
			}
			if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("pushing %s: %w", ref, err)
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s@%s\n", ref.Context(), d)
			return err
		},
	}
}
