package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/internal/atomicfile"
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

// fromLayout returns the image of the layout dir that tag names (see
// Resolve). Every blob read is checked against the digest that names it, as
// a registry's are: an index's child index and manifest, the manifest's
// config, and each layer as it is read (its diffID when it is unpacked).
func fromLayout(dir, tag string) (v1.Image, error) {
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
		if d, err = platformImage(child); err != nil {
			return nil, err
		}
	}
	return readImageFrom(blobs, d)
}

// platformImage picks the image of an index for linux and runtime.GOARCH.
func platformImage(im *v1.IndexManifest) (v1.Descriptor, error) {
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() && d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("image index has no image for linux/%s", runtime.GOARCH)
}

// Export writes img to dest:
//
//   - "oci-layout:DIR[:TAG]": into the OCI layout DIR (made if missing),
//     named by the org.opencontainers.image.ref.name annotation TAG
//     ("latest" by default) and replacing the image that had that name;
//   - "docker-archive:FILE[:NAME:TAG]": as a `docker save` tarball FILE
//     (replaced as a whole), tagged NAME:TAG if given, untagged otherwise.
func Export(ctx context.Context, img v1.Image, dest string) error {
	var err error
	switch {
	case strings.HasPrefix(dest, ociLayoutPrefix):
		dir, tag, _ := strings.Cut(strings.TrimPrefix(dest, ociLayoutPrefix), ":")
		err = toLayout(img, dir, tag)
	case strings.HasPrefix(dest, dockerArchivePrefix):
		file, tag, _ := strings.Cut(strings.TrimPrefix(dest, dockerArchivePrefix), ":")
		err = toArchive(ctx, img, file, tag)
	default:
		err = fmt.Errorf("unknown destination: want %sDIR[:TAG] or %sFILE[:NAME:TAG]", ociLayoutPrefix, dockerArchivePrefix)
	}
	if err != nil {
		return fmt.Errorf("export to %s: %w", dest, err)
	}
	return nil
}

// toLayout writes img into the layout dir. A new layout is made in a
// temp directory beside dir and renamed to dir once whole; into an
// existing one (or an existing empty directory), the blobs that a failure (a corrupt blob of the store) left
// half-written are removed, and its index.json, written last, is as it was.
func toLayout(img v1.Image, dir, tag string) error {
	if dir == "" {
		return errors.New("no directory given")
	}
	if tag == "" {
		tag = "latest"
	}
	opts := []layout.Option{layout.WithAnnotations(map[string]string{refNameAnnotation: tag})}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return newLayout(img, dir, tag, opts)
	}
	p, err := layout.FromPath(dir)
	if errors.Is(err, os.ErrNotExist) {
		p, err = layout.Write(dir, empty.Index) // an empty directory
	}
	if err != nil {
		return err
	}
	added, err := missingBlobs(dir, img)
	if err != nil {
		return err
	}
	if err := p.ReplaceImage(img, match.Annotation(refNameAnnotation, tag), opts...); err != nil {
		for _, b := range added {
			os.Remove(b)
		}
		return err
	}
	return nil
}

// newLayout writes img as the only image of a new layout dir.
func newLayout(img v1.Image, dir, tag string, opts []layout.Option) error {
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".oci-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // fails harmlessly once renamed
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.ReplaceImage(img, match.Annotation(refNameAnnotation, tag), opts...); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// missingBlobs returns the paths of img's blobs that the layout dir lacks.
func missingBlobs(dir string, img v1.Image) ([]string, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	hs := []v1.Hash{d, m.Config.Digest}
	for _, l := range m.Layers {
		hs = append(hs, l.Digest)
	}
	var missing []string
	for _, h := range hs {
		p := filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

func toArchive(ctx context.Context, img v1.Image, file, tag string) error {
	if file == "" {
		return errors.New("no file given")
	}
	var ref name.Reference
	if tag != "" {
		t, err := name.NewTag(tag, name.WeakValidation)
		if err != nil {
			return fmt.Errorf("invalid image name %q: %w", tag, err)
		}
		ref = t
	} else {
		// An untagged image: tarball.Write leaves RepoTags out for a digest.
		d, err := img.Digest()
		if err != nil {
			return err
		}
		if ref, err = name.NewDigest("image@" + d.String()); err != nil {
			return err
		}
	}
	return atomicfile.WriteWith(file, 0o644, nil, func(w io.Writer) error { return tarball.Write(ref, img, &ctxWriter{ctx: ctx, w: w}) })
}
