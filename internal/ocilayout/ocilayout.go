package ocilayout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/flock"
)

// RefName is the annotation of an index.json entry that names it.
const RefName = "org.opencontainers.image.ref.name"

// layoutFile is the content of the oci-layout file.
const layoutFile = `{"imageLayoutVersion":"1.0.0"}`

// Layout is an OCI image layout directory whose lock the caller holds.
type Layout struct {
	dir  string
	lock *os.File
}

// Lock opens the layout dir, making it (with its oci-layout file and an
// empty index.json) if it does not exist, and takes its lock, waiting
// until it is free or ctx is done. Close releases it.
func Lock(ctx context.Context, dir string) (*Layout, error) {
	if dir == "" {
		return nil, errors.New("no layout directory given")
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("opening the layout %s: %w", dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the layout %s: %w", dir, err)
	}
	if err := flock.Exclusive(ctx, f, 50*time.Millisecond); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the layout %s: %w", dir, err)
	}
	l := &Layout{dir: dir, lock: f}
	if err := l.init(); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening the layout %s: %w", dir, err)
	}
	return l, nil
}

// init writes oci-layout and index.json unless they exist.
func (l *Layout) init() error {
	for _, f := range []struct{ name, data string }{
		{"oci-layout", layoutFile},
		{"index.json", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`},
	} {
		p := filepath.Join(l.dir, f.name)
		if _, err := os.Stat(p); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := atomicfile.Write(p, []byte(f.data+"\n"), 0o644, nil); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the lock.
func (l *Layout) Close() error { return l.lock.Close() }

// Index reads index.json.
func (l *Layout) Index() (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(l.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the index of %s: %w", l.dir, err)
	}
	defer f.Close()
	im, err := v1.ParseIndexManifest(f)
	if err != nil {
		return nil, fmt.Errorf("reading the index of %s: %w", l.dir, err)
	}
	return im, nil
}

func (l *Layout) writeIndex(im *v1.IndexManifest) error {
	if im.Manifests == nil {
		im.Manifests = []v1.Descriptor{}
	}
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(l.dir, "index.json"), append(b, '\n'), 0o644, nil); err != nil {
		return fmt.Errorf("writing the index of %s: %w", l.dir, err)
	}
	return nil
}

// Put writes img's blobs that the layout lacks and names it ref,
// replacing the entries that had that name.
func (l *Layout) Put(ctx context.Context, img v1.Image, ref string) error {
	desc, err := l.writeImage(ctx, img)
	if err != nil {
		return fmt.Errorf("writing %s to %s: %w", ref, l.dir, err)
	}
	desc.Annotations = map[string]string{RefName: ref}
	im, err := l.Index()
	if err != nil {
		return err
	}
	im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Annotations[RefName] == ref })
	im.Manifests = append(im.Manifests, desc)
	return l.writeIndex(im)
}

// Remove removes the entries named one of refs (their blobs stay).
func (l *Layout) Remove(refs ...string) error {
	im, err := l.Index()
	if err != nil {
		return err
	}
	im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool { return slices.Contains(refs, d.Annotations[RefName]) })
	return l.writeIndex(im)
}

// writeImage writes img's layers, config and manifest and returns its
// descriptor.
func (l *Layout) writeImage(ctx context.Context, img v1.Image) (v1.Descriptor, error) {
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return v1.Descriptor{}, fmt.Errorf("media type %s is not an image manifest", mt)
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, layer := range layers {
		d, err := layer.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		if err := l.writeBlob(ctx, d, layer.Compressed); err != nil {
			return v1.Descriptor{}, fmt.Errorf("layer %s: %w", d, err)
		}
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	var m struct {
		Config       v1.Descriptor `json:"config"`
		ArtifactType string        `json:"artifactType"`
	}
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(rawManifest)), Digest: sha256Of(rawManifest), ArtifactType: m.ArtifactType}
	for _, b := range []struct {
		digest v1.Hash
		raw    []byte
	}{{m.Config.Digest, rawConfig}, {desc.Digest, rawManifest}} {
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.raw)), nil }
		if err := l.writeBlob(ctx, b.digest, open); err != nil {
			return v1.Descriptor{}, err
		}
	}
	return desc, nil
}

func sha256Of(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// writeBlob writes the blob d, which open reads, unless the layout has
// it; it fails, writing nothing, when what open reads has another
// digest.
func (l *Layout) writeBlob(ctx context.Context, d v1.Hash, open func() (io.ReadCloser, error)) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: only sha256 digests are supported", d)
	}
	p := filepath.Join(l.dir, "blobs", "sha256", d.Hex)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return atomicfile.WriteWith(p, 0o644, nil, func(w io.Writer) error {
		r, err := open()
		if err != nil {
			return err
		}
		defer r.Close()
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), readerCtx{ctx, r}); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex {
			return fmt.Errorf("blob %s: its content has digest sha256:%s", d, got)
		}
		return nil
	})
}

// readerCtx is a reader that stops when ctx is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
