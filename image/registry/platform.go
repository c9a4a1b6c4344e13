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

// Manifests returns the descriptor of what ref names (as Head does) and,
// when it is an image index, its manifests' descriptors, each with its
// platform.
func (c *Client) Manifests(ctx context.Context, ref name.Reference) (*v1.Descriptor, []v1.Descriptor, error) {
	d, err := c.Head(ctx, ref)
	if err != nil || !d.MediaType.IsIndex() {
		return d, nil, err
	}
	im, err := fromSources(c, ref, func(r name.Reference) (*v1.IndexManifest, error) {
		idx, err := remote.Index(r.Context().Digest(d.Digest.String()), c.with(ctx)...)
		if err == nil {
			var im *v1.IndexManifest
			if im, err = idx.IndexManifest(); err == nil {
				return im, nil
			}
		}
		return nil, describe(r.Context().RegistryStr(), err)
	})
	if err != nil {
		return nil, nil, err
	}
	return d, im.Manifests, nil
}
