package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/image/platform"
)

// ErrNoPlatform is the cause of the error of ImageFor when the image (or
// index) a name holds has nothing for the platform asked for.
var ErrNoPlatform = errors.New("no image for the platform")

// PlatformImage is one platform's image of an index.
type PlatformImage struct {
	Platform platform.Platform
	Image    v1.Image
}

// TagIndex writes every image of images, and an OCI image index of them
// with each one's platform, and names the index name (as Tag names an
// image). It returns the index's digest.
func (s *Store) TagIndex(ctx context.Context, images []PlatformImage, name string) (v1.Hash, error) {
	n, err := normalizeTag(name)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := s.addIndex(ctx, images, n)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("tag %s: %w", n, err)
	}
	return d, nil
}

// KeepIndex writes images as TagIndex does and keeps the index untagged
// (as Keep keeps an image).
func (s *Store) KeepIndex(ctx context.Context, images []PlatformImage) (v1.Hash, error) {
	d, err := s.addIndex(ctx, images, "")
	if err != nil {
		return v1.Hash{}, fmt.Errorf("keep image index: %w", err)
	}
	return d, nil
}

func (s *Store) addIndex(ctx context.Context, images []PlatformImage, n string) (v1.Hash, error) {
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	var blobs []blobSource
	for _, pi := range images {
		desc, bs, err := s.writeImage(ctx, pi.Image)
		if err != nil {
			return v1.Hash{}, err
		}
		p := pi.Platform.OCI()
		desc.Platform = &p
		im.Manifests = append(im.Manifests, desc)
		blobs = append(blobs, bs...)
	}
	raw, err := json.Marshal(im)
	if err != nil {
		return v1.Hash{}, err
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	d, err := s.putBlob(ctx, v1.Hash{}, open)
	if err != nil {
		return v1.Hash{}, err
	}
	blobs = append(blobs, blobSource{digest: d, open: open})
	return s.addEntry(ctx, v1.Descriptor{MediaType: types.OCIImageIndex, Size: int64(len(raw)), Digest: d}, blobs, n)
}

// TagPlatform adds img, an image of the platform its config names, to
// what name holds: an index gets img in place of its image of that
// platform (or beside its others); an image of another platform becomes
// an index of both; an image of the same platform, or nothing, is
// replaced by img alone. It returns the digest name then has.
func (s *Store) TagPlatform(ctx context.Context, img v1.Image, name string) (v1.Hash, error) {
	p, err := imagePlatform(img)
	if err != nil {
		return v1.Hash{}, err
	}
	images := []PlatformImage{{Platform: p, Image: img}}
	old, err := s.Platforms(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v1.Hash{}, err
	}
	for _, o := range old {
		if o.Platform.Matches(p) {
			continue
		}
		images = append(images, o)
	}
	if len(images) == 1 {
		return s.Tag(ctx, img, name)
	}
	slices.SortStableFunc(images, func(a, b PlatformImage) int { return strings.Compare(a.Platform.String(), b.Platform.String()) })
	return s.TagIndex(ctx, images, name)
}

// Platforms returns the images name holds with their platforms: an
// index's, in its order, or the one image's (its config's platform).
func (s *Store) Platforms(ctx context.Context, name string) ([]PlatformImage, error) {
	desc, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsIndex() {
		img, err := s.readImage(desc)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", name, err)
		}
		p, err := imagePlatform(img)
		if err != nil {
			return nil, err
		}
		return []PlatformImage{{Platform: p, Image: img}}, nil
	}
	im, err := s.readIndexManifest(desc)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	var out []PlatformImage
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || d.Platform == nil {
			continue
		}
		img, err := s.readImage(d)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", name, err)
		}
		out = append(out, PlatformImage{Platform: platform.FromOCI(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant), Image: img})
	}
	return out, nil
}

// ImageFor returns the image of platform p that name holds: an index's
// image for p, or the image itself when its config is for p. Otherwise
// the error wraps ErrNoPlatform and names the platforms there are.
func (s *Store) ImageFor(ctx context.Context, name string, p platform.Platform) (v1.Image, error) {
	all, err := s.Platforms(ctx, name)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, pi := range all {
		if p.Matches(pi.Platform) {
			return pi.Image, nil
		}
		have = append(have, pi.Platform.String())
	}
	return nil, fmt.Errorf("image %q has no image for %s (it has %s): %w", name, p, strings.Join(have, ", "), ErrNoPlatform)
}

// Index returns the image index name holds, or false when it holds an
// image.
func (s *Store) Index(ctx context.Context, name string) (v1.ImageIndex, bool, error) {
	desc, err := s.lookup(name)
	if err != nil || !desc.MediaType.IsIndex() {
		return nil, false, err
	}
	raw, err := s.readBlob(desc.Digest)
	if err != nil {
		return nil, false, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, false, fmt.Errorf("image index %s: %w", desc.Digest, err)
	}
	return &storeIndex{s: s, desc: desc, raw: raw, im: im}, true, nil
}

// indexImage is the image of platform p of the index desc, which name named.
func (s *Store) indexImage(name string, desc v1.Descriptor, p platform.Platform) (v1.Image, error) {
	im, err := s.readIndexManifest(desc)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	var have []string
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() && d.Platform != nil {
			q := platform.FromOCI(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant)
			if p.Matches(q) {
				return s.readImage(d)
			}
			have = append(have, q.String())
		}
	}
	return nil, fmt.Errorf("image %q has no image for %s (it has %s): %w", name, p, strings.Join(have, ", "), ErrNoPlatform)
}

func (s *Store) readIndexManifest(desc v1.Descriptor) (*v1.IndexManifest, error) {
	raw, err := s.readBlob(desc.Digest)
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image index %s: %w", desc.Digest, err)
	}
	return im, nil
}

// indexSummary sums up the index desc for List: its size counts each blob
// once, its date is its newest image's.
func (s *Store) indexSummary(desc v1.Descriptor) (Summary, error) {
	im, err := s.readIndexManifest(desc)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Digest: desc.Digest, Size: desc.Size}
	seen := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := s.readImage(d)
		if err != nil {
			return Summary{}, err
		}
		for _, b := range append([]v1.Descriptor{d, img.manifest.Config}, img.manifest.Layers...) {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				sum.Size += b.Size
			}
		}
		if img.config.Created.After(sum.Created) {
			sum.Created = img.config.Created.Time
		}
		if d.Platform != nil {
			sum.Platforms = append(sum.Platforms, platform.FromOCI(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant))
		}
	}
	return sum, nil
}

// imagePlatform is the platform an image's config names.
func imagePlatform(img v1.Image) (platform.Platform, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return platform.Platform{}, fmt.Errorf("reading the image's config: %w", err)
	}
	return platform.FromOCI(cf.OS, cf.Architecture, cf.Variant), nil
}

// storeIndex is an image index of the store.
type storeIndex struct {
	s    *Store
	desc v1.Descriptor
	raw  []byte
	im   *v1.IndexManifest
}

var _ v1.ImageIndex = (*storeIndex)(nil)

func (x *storeIndex) MediaType() (types.MediaType, error)       { return x.desc.MediaType, nil }
func (x *storeIndex) Digest() (v1.Hash, error)                  { return x.desc.Digest, nil }
func (x *storeIndex) Size() (int64, error)                      { return x.desc.Size, nil }
func (x *storeIndex) IndexManifest() (*v1.IndexManifest, error) { return x.im.DeepCopy(), nil }
func (x *storeIndex) RawManifest() ([]byte, error)              { return x.raw, nil }
func (x *storeIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("image index %s: nested indexes are not kept", h)
}

func (x *storeIndex) Image(h v1.Hash) (v1.Image, error) {
	for _, d := range x.im.Manifests {
		if d.Digest == h {
			return x.s.readImage(d)
		}
	}
	return nil, fmt.Errorf("image index %s has no image %s", x.desc.Digest, h)
}

// ExportIndex writes idx into the OCI layout dir (made if missing), named
// by the org.opencontainers.image.ref.name annotation tag and replacing
// what had that name.
func ExportIndex(ctx context.Context, idx v1.ImageIndex, dir, tag string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("export to %s: %w", dir, err)
		}
	}
	ann := map[string]string{refNameAnnotation: tag}
	if err := p.ReplaceIndex(idx, match.Annotation(refNameAnnotation, tag), layout.WithAnnotations(ann)); err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	return ctx.Err()
}
