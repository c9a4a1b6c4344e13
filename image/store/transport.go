package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/ocilayout"
)

// The transports of Resolve and Export.
const (
	ociLayoutPrefix     = "oci-layout:"
	dockerArchivePrefix = "docker-archive:"
)

// Resolve finds the image that ref names:
//
//   - "oci-layout:DIR[:TAG]": the image of the OCI layout DIR whose
//     org.opencontainers.image.ref.name annotation is TAG; without TAG the
//     layout's only image, or else the one named "latest". An entry that is
//     an image index resolves to its image for linux and kiln's architecture.
//   - "docker-archive:FILE[:NAME:TAG]": the image of a `docker save` tarball
//     tagged NAME:TAG; without it, the tarball's only image.
//   - anything else: an image of the store, as Image finds it.
//
// As with skopeo, the first ':' after the transport ends DIR or FILE.
func (s *Store) Resolve(ctx context.Context, ref string) (v1.Image, error) {
	switch {
	case strings.HasPrefix(ref, ociLayoutPrefix):
		dir, tag, _ := strings.Cut(strings.TrimPrefix(ref, ociLayoutPrefix), ":")
		img, err := fromLayout(dir, tag)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return img, nil
	case strings.HasPrefix(ref, dockerArchivePrefix):
		file, tag, _ := strings.Cut(strings.TrimPrefix(ref, dockerArchivePrefix), ":")
		var t *name.Tag
		if tag != "" {
			parsed, err := name.NewTag(tag, name.WeakValidation)
			if err != nil {
				return nil, fmt.Errorf("resolve %s: invalid image name %q: %w", ref, tag, err)
			}
			t = &parsed
		}
		img, err := tarball.ImageFromPath(file, t)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return img, nil
	default:
		return s.Image(ctx, ref)
	}
}

// IsTransport reports whether ref names an image outside the store, by
// one of the transports of Resolve (oci-layout:, docker-archive:).
func IsTransport(ref string) bool {
	return strings.HasPrefix(ref, ociLayoutPrefix) || strings.HasPrefix(ref, dockerArchivePrefix)
}

// SourceNames returns the names that the image ref resolves to has where
// it is: for "docker-archive:FILE:NAME:TAG", NAME:TAG; for
// "docker-archive:FILE", the RepoTags of its only image; none for an OCI
// layout (whose ref names are tags, not image names) or the store.
func SourceNames(ref string) ([]string, error) {
	rest, ok := strings.CutPrefix(ref, dockerArchivePrefix)
	if !ok {
		return nil, nil
	}
	file, tag, _ := strings.Cut(rest, ":")
	if tag != "" {
		return []string{tag}, nil
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		return nil, fmt.Errorf("reading the names in %s: %w", file, err)
	}
	if len(m) != 1 {
		return nil, fmt.Errorf("reading the names in %s: it holds %d images", file, len(m))
	}
	return m[0].RepoTags, nil
}

// fromLayout returns the image of the layout dir that tag names (see
// Resolve). Every blob read is checked against the digest that names it, as
// a registry's are: an index's child index and manifest, the manifest's
// config, and each layer as it is read (its diffID when it is unpacked).
// ResolveFor returns the image of platform p that ref names, as Resolve
// takes ref: of an OCI layout whose entry is an image index, the index's
// image for p; otherwise what Resolve returns (whose platform the caller
// checks).
func (s *Store) ResolveFor(ctx context.Context, ref string, p platform.Platform) (v1.Image, error) {
	rest, ok := strings.CutPrefix(ref, ociLayoutPrefix)
	if !ok {
		return s.Resolve(ctx, ref)
	}
	dir, tag, _ := strings.Cut(rest, ":")
	img, err := fromLayoutFor(dir, tag, p)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return img, nil
}

func fromLayout(dir, tag string) (v1.Image, error) {
	return fromLayoutFor(dir, tag, platform.Host())
}

// fromLayoutFor reads the image of the layout dir named tag (or its only
// one, or "latest"), of an image index its image for p.
func fromLayoutFor(dir, tag string, want platform.Platform) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if tag != "" && d.Annotations[refNameAnnotation] == tag {
			found = append(found, d)
		}
	}
	switch {
	case tag != "":
	case len(im.Manifests) == 1:
		found = im.Manifests
	default:
		for _, d := range im.Manifests {
			if d.Annotations[refNameAnnotation] == "latest" {
				found = append(found, d)
			}
		}
	}
	if len(found) != 1 {
		var names []string
		for _, d := range im.Manifests {
			names = append(names, d.Annotations[refNameAnnotation])
		}
		want := tag
		if want == "" {
			want = "the only image or \"latest\""
		}
		return nil, fmt.Errorf("layout %s has %d images named %s (its names: %q)", dir, len(found), want, names)
	}
	blobs := blobDir{at: "oci-layout " + dir, path: func(h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }}
	d := found[0]
	if d.MediaType.IsIndex() {
		raw, err := blobs.readBlob("image index", d.Digest)
		if err != nil {
			return nil, err
		}
		child, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("image index %s: %w", d.Digest, err)
		}
		if d, err = platformImage(child, want); err != nil {
			return nil, err
		}
	}
	return readImageFrom(blobs, d)
}

// platformImage picks the image of an index for p.
func platformImage(im *v1.IndexManifest, p platform.Platform) (v1.Descriptor, error) {
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() && d.Platform != nil && p.Matches(platform.FromOCI(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant)) {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("image index has no image for %s: %w", p, ErrNoPlatform)
}

// Export writes img to dest:
//
//   - "oci-layout:DIR[:TAG]": into the OCI layout DIR (made if missing),
//     named by the org.opencontainers.image.ref.name annotation TAG
//     ("latest" by default) and replacing the image that had that name;
//   - "docker-archive:FILE[:NAME:TAG]": as a `docker save` tarball FILE
//     (replaced as a whole), whose RepoTags are NAME:TAG if given, else
//     names (each normalised as Tag does, in their order), else none.
func Export(ctx context.Context, img v1.Image, dest string, names ...string) error {
	var err error
	switch {
	case strings.HasPrefix(dest, ociLayoutPrefix):
		dir, tag, _ := strings.Cut(strings.TrimPrefix(dest, ociLayoutPrefix), ":")
		err = toLayout(ctx, img, dir, tag)
	case strings.HasPrefix(dest, dockerArchivePrefix):
		file, tag, _ := strings.Cut(strings.TrimPrefix(dest, dockerArchivePrefix), ":")
		if tag != "" {
			names = []string{tag}
		}
		err = toArchive(ctx, img, file, names)
	default:
		err = fmt.Errorf("unknown destination: want %sDIR[:TAG] or %sFILE[:NAME:TAG]", ociLayoutPrefix, dockerArchivePrefix)
	}
	if err != nil {
		return fmt.Errorf("export to %s: %w", dest, err)
	}
	return nil
}

// toLayout writes img into the layout dir as tag. A new layout is made in
// a temp directory beside dir and renamed to dir once whole, so that a
// failed export (a corrupt blob of the store) leaves nothing; into an
// existing layout, ocilayout writes blobs only once their digest is
// checked and index.json last.
func toLayout(ctx context.Context, img v1.Image, dir, tag string) error {
	if dir == "" {
		return errors.New("no directory given")
	}
	if tag == "" {
		tag = "latest"
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".oci-layout-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp) // fails harmlessly once renamed
		if err := putLayout(ctx, img, tmp, tag); err != nil {
			return err
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err == nil || !errors.Is(err, os.ErrExist) && !errors.Is(err, unix.ENOTEMPTY) {
			return err
		}
		// Another export made dir meanwhile: write into it.
	}
	return putLayout(ctx, img, dir, tag)
}

// putLayout writes img into the layout dir as tag, under its lock.
func putLayout(ctx context.Context, img v1.Image, dir, tag string) error {
	l, err := ocilayout.Lock(ctx, dir)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Put(ctx, img, tag)
}

func toArchive(ctx context.Context, img v1.Image, file string, names []string) error {
	if file == "" {
		return errors.New("no file given")
	}
	refs := map[name.Reference]v1.Image{}
	var tags []string
	for _, n := range names {
		full, err := normalizeTag(n)
		if err != nil {
			return err
		}
		norm := Familiar(full) // as docker save writes RepoTags
		t, err := name.NewTag(norm, name.WeakValidation)
		if err != nil {
			return fmt.Errorf("invalid image name %q: %w", n, err)
		}
		if !slices.Contains(tags, norm) {
			refs[t] = img
			tags = append(tags, norm)
		}
	}
	if len(refs) == 0 {
		// An untagged image: tarball.Write leaves RepoTags out for a digest.
		d, err := img.Digest()
		if err != nil {
			return err
		}
		ref, err := name.NewDigest("image@" + d.String())
		if err != nil {
			return err
		}
		refs[ref] = img
	}
	return atomicfile.WriteWith(file, 0o644, nil, func(w io.Writer) error {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := tarball.MultiRefWrite(refs, &ctxWriter{ctx: ctx, w: pw})
			pw.CloseWithError(err)
			done <- err
		}()
		err := orderRepoTags(w, pr, tags)
		if err != nil {
			pr.CloseWithError(err) // stops the writer
			<-done
			return err
		}
		if _, err := io.Copy(io.Discard, pr); err != nil {
			return err
		}
		return <-done
	})
}

// orderRepoTags copies the docker archive r reads to w, with the
// RepoTags of its manifest.json in the order of tags: tarball lists an
// image's names in the order of a map.
func orderRepoTags(w io.Writer, r io.Reader, tags []string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		var body io.Reader = tr
		if h.Name == "manifest.json" {
			var m tarball.Manifest
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return fmt.Errorf("reading manifest.json: %w", err)
			}
			for _, d := range m {
				slices.SortFunc(d.RepoTags, func(a, b string) int { return slices.Index(tags, a) - slices.Index(tags, b) })
			}
			b, err := json.Marshal(m)
			if err != nil {
				return err
			}
			h.Size, body = int64(len(b)), bytes.NewReader(b)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, body); err != nil {
			return err
		}
	}
}
