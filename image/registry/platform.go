package registry

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushIndex uploads every image of idx (each blob the registry lacks,
// once) and the index's manifest to ref.
func (c *Client) PushIndex(ctx context.Context, idx v1.ImageIndex, ref name.Reference) error {
	if err := remote.WriteIndex(ref, idx, c.with(ctx)...); err != nil {
		return describe(ref.Context().RegistryStr(), err)
	}
	return nil
}

// ImageFor returns the image ref names for platform p: an index's image
// for p, or the image when its config is for p.
func (c *Client) ImageFor(ctx context.Context, ref name.Reference, p v1.Platform) (v1.Image, error) {
	img, err := remote.Image(ref, append(c.with(ctx), remote.WithPlatform(p))...)
	if err != nil {
		return nil, describe(ref.Context().RegistryStr(), err)
	}
	if _, err := img.RawConfigFile(); err != nil {
		return nil, describe(ref.Context().RegistryStr(), err)
	}
	return img, nil
}
