package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/image/platform"
)

// Summary describes an image of the store.
type Summary struct {
	Name string // "" for an untagged image

	Digest  v1.Hash // of the manifest
	Size    int64   // manifest + config + compressed layers
	Created time.Time
	// Platforms are an image index's platforms, in its order; none for
	// an image.
	Platforms []platform.Platform
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
	lazy   bool // a lazy layer's tar, not fetched (see PutLazyLayer)
}

// Tag writes img's blobs to the store and names it name, replacing the image
// that had the name before. It returns img's digest.
func (s *Store) Tag(ctx context.Context, img v1.Image, name string) (v1.Hash, error) {
	n, err := normalizeTag(name)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := s.add(ctx, img, n)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("tag %s: %w", n, err)
	}
	return d, nil
}

// Keep writes img's blobs to the store and keeps it untagged: an entry of
// index.json without a name, which Image finds by digest and collection
// keeps, until Remove removes it by digest or Tag names the image. An
// image that has an entry already (named or not) gets no other. It
// returns img's digest.
func (s *Store) Keep(ctx context.Context, img v1.Image) (v1.Hash, error) {
	d, err := s.add(ctx, img, "")
	if err != nil {
		return v1.Hash{}, fmt.Errorf("keep image: %w", err)
	}
	return d, nil
}

// add writes img's blobs and gives it the entry named n (normalised), or
// an untagged entry when n is "". A name replaces the entry that had it
// and the image's untagged entry.
func (s *Store) add(ctx context.Context, img v1.Image, n string) (v1.Hash, error) {
	desc, blobs, err := s.writeImage(ctx, img)
	if err != nil {
		return v1.Hash{}, err
	}
	return s.addEntry(ctx, desc, blobs, n)
}

// addEntry gives desc, whose blobs are written, the entry named n (see add).
func (s *Store) addEntry(ctx context.Context, desc v1.Descriptor, blobs []blobSource, n string) (v1.Hash, error) {
	var err error
	if n != "" {
		desc.Annotations = map[string]string{refNameAnnotation: n}
	}
	err = s.updateIndex(ctx, func(im *v1.IndexManifest) error {
		// A collection may have removed a blob we reused between our
		// writing it and our taking the lock: put any such blob back.
		for _, b := range blobs {
			if _, err := os.Stat(s.BlobPath(b.digest)); err == nil || b.lazy && s.IsLazy(b.digest) {
				continue
			}
			if _, err := s.putBlob(ctx, b.digest, b.open); err != nil {
				return err
			}
		}
		if n == "" {
			if slices.ContainsFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == desc.Digest }) {
				return nil
			}
		} else {
			im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool {
				name, named := d.Annotations[refNameAnnotation]
				return (named && sameName(name, n)) || (!named && d.Digest == desc.Digest)
			})
		}
		im.Manifests = append(im.Manifests, desc)
		return nil
	})
	if err != nil {
		return v1.Hash{}, err
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
			if want != (v1.Hash{}) && s.IsLazy(want) {
				blobs[i] = blobSource{digest: want, lazy: true}
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

// Image returns the image named name (as FullName normalises it: "busybox"
// means "docker.io/library/busybox:latest"), or
// the one whose digest is name ("sha256:" and all or at least 12 hex digits
// of it, naming one image; or 12 to 64 hex digits alone, as docker's short
// ids, when no image has that name), or the one of digest d in "repo@d".
// Untagged images (see Keep) are found by digest.
func (s *Store) Image(ctx context.Context, name string) (v1.Image, error) {
	desc, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		// An image index (a multi-platform build): this machine's image.
		return s.indexImage(name, desc, platform.Host())
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
	d, _, err := find(im, n)
	return d, err
}

// Name returns the name of the image that ref names (as Image takes it),
// as docker prints it (Familiar), or "" when ref names it by digest.
func (s *Store) Name(ctx context.Context, ref string) (string, error) {
	im, err := s.readIndex()
	if err != nil {
		return "", err
	}
	d, byDigest, err := find(im, ref)
	if err != nil || byDigest {
		return "", err
	}
	return displayName(d.Annotations[refNameAnnotation]), nil
}

// displayName returns the name of an index entry as List prints it.
func displayName(entry string) string {
	if full, err := normalize(entry); err == nil {
		return Familiar(full)
	}
	return entry
}

// find finds the entry of im that n names (see Image), and says whether n
// named it by digest.
func find(im *v1.IndexManifest, n string) (d v1.Descriptor, byDigest bool, err error) {
	if prefix, ok := strings.CutPrefix(n, "sha256:"); ok {
		if !isHex(prefix) || len(prefix) < 12 || len(prefix) > 64 {
			return v1.Descriptor{}, false, fmt.Errorf("invalid image digest %q: want sha256: and 12 to 64 lowercase hex digits", n)
		}
		d, err := findDigest(im, n, prefix)
		return d, true, err
	}
	shortID := isHex(n) && len(n) >= 12 && len(n) <= 64
	norm, err := normalize(n)
	if err != nil {
		if shortID {
			d, err := findDigest(im, n, n)
			return d, true, err
		}
		return v1.Descriptor{}, false, err
	}
	if repo, dig, ok := strings.Cut(norm, "@"); ok {
		for _, d := range im.Manifests {
			named, err := normalize(d.Annotations[refNameAnnotation])
			if err == nil && d.Digest.String() == dig && repoOf(named) == repo {
				return d, false, nil
			}
		}
		return v1.Descriptor{}, false, fmt.Errorf("image %q: %w", n, ErrNotFound)
	}
	for i := len(im.Manifests) - 1; i >= 0; i-- {
		if d := im.Manifests[i]; d.Annotations[refNameAnnotation] != "" && sameName(d.Annotations[refNameAnnotation], norm) {
			return d, false, nil
		}
	}
	if shortID {
		d, err := findDigest(im, n, n)
		return d, true, err
	}
	return v1.Descriptor{}, false, fmt.Errorf("image %q: %w", n, ErrNotFound)
}

// findDigest finds the entry whose digest starts with the hex digits
// prefix; n is the name asked for, for messages.
func findDigest(im *v1.IndexManifest, n, prefix string) (v1.Descriptor, error) {
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if strings.HasPrefix(d.Digest.Hex, prefix) && !slices.ContainsFunc(found, func(f v1.Descriptor) bool { return f.Digest == d.Digest }) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("image %q: %w", n, ErrNotFound)
	case 1:
		return found[0], nil
	default:
		var ds []string
		for _, d := range found {
			ds = append(ds, d.Digest.String())
		}
		return v1.Descriptor{}, fmt.Errorf("image %q: the prefix matches %d images (%s); give more digits", n, len(found), strings.Join(ds, ", "))
	}
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

// List returns the images of the store: the named ones sorted by name,
// then the untagged ones (Name ""), newest first.
func (s *Store) List(ctx context.Context) ([]Summary, error) {
	im, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, d := range im.Manifests {
		n := d.Annotations[refNameAnnotation]
		if n != "" {
			n = displayName(n)
		}
		if d.MediaType.IsIndex() {
			sum, err := s.indexSummary(d)
			if err != nil {
				return nil, fmt.Errorf("list images: %s: %w", cmp.Or(n, d.Digest.String()), err)
			}
			sum.Name = n
			out = append(out, sum)
			continue
		}
		img, err := s.readImage(d)
		if err != nil {
			return nil, fmt.Errorf("list images: %s: %w", cmp.Or(n, d.Digest.String()), err)
		}
		size := d.Size + img.manifest.Config.Size
		for _, l := range img.manifest.Layers {
			size += l.Size
		}
		out = append(out, Summary{Name: n, Digest: d.Digest, Size: size, Created: img.config.Created.Time})
	}
	slices.SortStableFunc(out, func(a, b Summary) int {
		switch {
		case (a.Name == "") != (b.Name == ""):
			if a.Name == "" {
				return 1
			}
			return -1
		case a.Name != "":
			return cmp.Compare(a.Name, b.Name)
		default:
			return b.Created.Compare(a.Created)
		}
	})
	return out, nil
}

// Remove removes the name name from its image, and then collects garbage as
// the package documentation describes. A digest (as Image takes it) names
// an untagged image, which Remove removes, or an image of one name, which
// it removes with its name; an image of several names is refused.
func (s *Store) Remove(ctx context.Context, name string) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	defer unlock()
	im, err := s.readIndex()
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	desc, byDigest, err := find(im, name)
	if err != nil {
		return err
	}
	n := desc.Annotations[refNameAnnotation]
	remove := func(d v1.Descriptor) bool { return d.Annotations[refNameAnnotation] == n }
	if byDigest {
		var names []string
		for _, d := range im.Manifests {
			if dn, ok := d.Annotations[refNameAnnotation]; ok && d.Digest == desc.Digest {
				names = append(names, displayName(dn))
			}
		}
		if len(names) > 1 {
			return fmt.Errorf("remove %s: the image %s has %d names (%s): remove them by name", name, desc.Digest, len(names), strings.Join(names, ", "))
		}
		remove = func(d v1.Descriptor) bool { return d.Digest == desc.Digest }
	}
	im.Manifests = slices.DeleteFunc(im.Manifests, remove)
	if err := s.writeIndex(im); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := s.collect(ctx, im, time.Now().Add(-GCGrace)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}
