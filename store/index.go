package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Summary describes a named image of the store.
type Summary struct {
	Name    string
	Digest  v1.Hash // of the manifest
	Size    int64   // manifest + config + compressed layers
	Created time.Time
}

// readIndex reads oci/index.json. It needs no lock: the file is only ever
// replaced by a rename.
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	f, err := os.Open(s.indexPath())
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	defer f.Close()
	im, err := v1.ParseIndexManifest(f)
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", s.indexPath(), err)
	}
	return im, nil
}

// writeIndex replaces oci/index.json; the caller holds the lock.
func (s *Store) writeIndex(im *v1.IndexManifest) error {
	if im.Manifests == nil {
		im.Manifests = []v1.Descriptor{}
	}
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	if err := s.writeFileAtomic(s.indexPath(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write index %s: %w", s.indexPath(), err)
	}
	return nil
}

// blobSource is one blob of an image and how to read it.
type blobSource struct {
	digest v1.Hash
	open   func() (io.ReadCloser, error)
}

// Tag writes img's blobs to the store and names it name, replacing the image
// that had the name before. It returns img's digest.
func (s *Store) Tag(ctx context.Context, img v1.Image, name string) (v1.Hash, error) {
	n, err := normalizeTag(name)
	if err != nil {
		return v1.Hash{}, err
	}
	desc, blobs, err := s.writeImage(ctx, img)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("tag %s: %w", n, err)
	}
	desc.Annotations = map[string]string{refNameAnnotation: n}
	err = s.updateIndex(ctx, func(im *v1.IndexManifest) error {
		// A collection may have removed a blob we reused between our
		// writing it and our taking the lock: put any such blob back.
		for _, b := range blobs {
			if _, err := os.Stat(s.BlobPath(b.digest)); err == nil {
				continue
			}
			if _, err := s.putBlob(ctx, b.digest, b.open); err != nil {
				return err
			}
		}
		im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Annotations[refNameAnnotation] == n })
		im.Manifests = append(im.Manifests, desc)
		return nil
	})
	if err != nil {
		return v1.Hash{}, fmt.Errorf("tag %s: %w", n, err)
	}
	return desc.Digest, nil
}

// updateIndex runs change on index.json under the lock, and writes the result.
func (s *Store) updateIndex(ctx context.Context, change func(im *v1.IndexManifest) error) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	im, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := change(im); err != nil {
		return err
	}
	return s.writeIndex(im)
}

// writeImage writes the layers (up to 4 at a time), config and manifest of img
// as blobs and returns its descriptor and its blobs.
func (s *Store) writeImage(ctx context.Context, img v1.Image) (v1.Descriptor, []blobSource, error) {
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	blobs := make([]blobSource, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			want, err := l.Digest()
			if errors.Is(err, stream.ErrNotComputed) {
				want, err = v1.Hash{}, nil // known once it is read
			}
			if err != nil {
				errs[i] = err
				return
			}
			d, err := s.putBlob(ctx, want, l.Compressed)
			if err != nil {
				errs[i] = fmt.Errorf("write layer %d: %w", i, err)
				return
			}
			blobs[i] = blobSource{digest: d, open: l.Compressed}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return v1.Descriptor{}, nil, err
	}

	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return v1.Descriptor{}, nil, fmt.Errorf("media type %s is not an image manifest", mt)
	}
	for _, raw := range [][]byte{rawConfig, rawManifest} {
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
		d, err := s.putBlob(ctx, v1.Hash{}, open)
		if err != nil {
			return v1.Descriptor{}, nil, err
		}
		blobs = append(blobs, blobSource{digest: d, open: open})
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(rawManifest)), Digest: blobs[len(blobs)-1].digest}
	return desc, blobs, nil
}

// Image returns the image named name ("busybox" means "busybox:latest"), or the
// one whose digest is name ("sha256:" and all or at least 12 hex digits of
// it, naming one image), or the one of digest d in "repo@d".
func (s *Store) Image(ctx context.Context, name string) (v1.Image, error) {
	desc, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	img, err := s.readImage(desc)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	return img, nil
}

// lookup finds the index entry of name (see Image).
func (s *Store) lookup(n string) (v1.Descriptor, error) {
	im, err := s.readIndex()
	if err != nil {
		return v1.Descriptor{}, err
	}
	notFound := fmt.Errorf("image %q: %w", n, ErrNotFound)
	if prefix, ok := strings.CutPrefix(n, "sha256:"); ok {
		if !isHex(prefix) || len(prefix) < 12 || len(prefix) > 64 {
			return v1.Descriptor{}, fmt.Errorf("invalid image digest %q: want sha256: and 12 to 64 lowercase hex digits", n)
		}
		var found []v1.Descriptor
		for _, d := range im.Manifests {
			if strings.HasPrefix(d.Digest.Hex, prefix) && (len(found) == 0 || found[0].Digest != d.Digest) {
				found = append(found, d)
			}
		}
		switch len(found) {
		case 0:
			return v1.Descriptor{}, notFound
		case 1:
			return found[0], nil
		default:
			return v1.Descriptor{}, fmt.Errorf("image %q: the prefix matches %d images; give more digits", n, len(found))
		}
	}
	norm, err := normalize(n)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if repo, dig, ok := strings.Cut(norm, "@"); ok {
		for _, d := range im.Manifests {
			named := d.Annotations[refNameAnnotation]
			if d.Digest.String() == dig && repoOf(named) == repo {
				return d, nil
			}
		}
		return v1.Descriptor{}, notFound
	}
	for i := len(im.Manifests) - 1; i >= 0; i-- {
		if d := im.Manifests[i]; d.Annotations[refNameAnnotation] == norm {
			return d, nil
		}
	}
	return v1.Descriptor{}, notFound
}

// repoOf returns a normalised name without its tag.
func repoOf(n string) string {
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[:i]
	}
	return n
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// List returns the named images of the store, sorted by name.
func (s *Store) List(ctx context.Context) ([]Summary, error) {
	im, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, d := range im.Manifests {
		n, ok := d.Annotations[refNameAnnotation]
		if !ok {
			continue
		}
		img, err := s.readImage(d)
		if err != nil {
			return nil, fmt.Errorf("list images: %s: %w", n, err)
		}
		size := d.Size + img.manifest.Config.Size
		for _, l := range img.manifest.Layers {
			size += l.Size
		}
		out = append(out, Summary{Name: n, Digest: d.Digest, Size: size, Created: img.config.Created.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove removes the name name from its image, and then collects garbage as
// the package documentation describes.
func (s *Store) Remove(ctx context.Context, name string) error {
	n, err := normalizeTag(name)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", n, err)
	}
	defer unlock()
	im, err := s.readIndex()
	if err != nil {
		return fmt.Errorf("remove %s: %w", n, err)
	}
	before := len(im.Manifests)
	im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Annotations[refNameAnnotation] == n })
	if len(im.Manifests) == before {
		return fmt.Errorf("image %q: %w", n, ErrNotFound)
	}
	if err := s.writeIndex(im); err != nil {
		return fmt.Errorf("remove %s: %w", n, err)
	}
	if err := s.collect(ctx, im, time.Now().Add(-GCGrace)); err != nil {
		return fmt.Errorf("remove %s: %w", n, err)
	}
	return nil
}
