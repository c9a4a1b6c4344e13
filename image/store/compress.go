package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is how a layer blob is compressed.
type Compression string

// The compressions of layer blobs.
const (
	// Gzip is parallel gzip (klauspost/pgzip) at the default level, with
	// the media type types.OCILayer. It is what WriteLayer writes.
	Gzip Compression = "gzip"
	// Zstd is zstd (klauspost/compress/zstd) at its default level, with
	// the media type types.OCILayerZStd. Its output does not depend on
	// the number of cores.
	Zstd Compression = "zstd"
)

// ParseCompression returns the Compression named s: "gzip" or "zstd".
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Gzip, Zstd:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q: want gzip or zstd", s)
}

// writer returns a compressing writer to w and the media type of what it
// writes.
func (c Compression) writer(w io.Writer) (io.WriteCloser, types.MediaType, error) {
	switch c {
	case Gzip:
		return pgzip.NewWriter(w), types.OCILayer, nil
	case Zstd:
		zw, err := zstd.NewWriter(w)
		return zw, types.OCILayerZStd, err
	}
	return nil, "", fmt.Errorf("unknown compression %q", c)
}

// mediaType is the OCI media type of a layer compressed as c.
func (c Compression) mediaType() (types.MediaType, bool) {
	switch c {
	case Gzip:
		return types.OCILayer, true
	case Zstd:
		return types.OCILayerZStd, true
	}
	return "", false
}

// is reports whether a layer of media type mt is compressed as c.
// Foreign layers count as compressed as anything, so that they are left
// alone; uncompressed ones (a step's, see StageLayer) as compressed as
// nothing.
func (c Compression) is(mt types.MediaType) bool {
	switch mt {
	case types.OCILayer, types.DockerLayer:
		return c == Gzip
	case types.OCILayerZStd:
		return c == Zstd
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return false
	}
	return true
}

// Recompress returns img with each layer that is not compressed as c
// (uncompressed ones included) decompressed and compressed again as c (in
// one stream, checking the diffID on the way), its blob written to the
// store as WriteLayer writes one. Each layer is compressed once: the blob
// is remembered by diffID and reused while the store has it, and a
// compression under way (Precompress) is waited for. The config is unchanged, so is every diffID; the manifest names the
// new blobs and, for Zstd, becomes an OCI manifest if it was a Docker one.
// When every layer is compressed as c already, img itself is returned.
func (s *Store) Recompress(ctx context.Context, img v1.Image, c Compression) (v1.Image, error) {
	if _, _, err := c.writer(io.Discard); err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("recompress: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("recompress: %w", err)
	}
	byDigest := map[v1.Hash]partial.CompressedLayer{}
	changed := false
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("recompress: layer %d: %w", i, err)
		}
		if c.is(mt) {
			byDigest[m.Layers[i].Digest] = l
			continue
		}
		nl, err := s.compressedLayer(ctx, l, c)
		if err != nil {
			return nil, fmt.Errorf("recompress: layer %d: %w", i, err)
		}
		pd, err := partial.Descriptor(nl)
		if err != nil {
			return nil, fmt.Errorf("recompress: layer %d: %w", i, err)
		}
		d := v1.Descriptor{MediaType: pd.MediaType, Size: pd.Size, Digest: pd.Digest}
		d.Annotations, d.URLs = m.Layers[i].Annotations, m.Layers[i].URLs
		m.Layers[i] = d
		byDigest[d.Digest] = nl
		changed = true
	}
	if !changed {
		return img, nil
	}
	if c == Zstd && m.MediaType == types.DockerManifestSchema2 {
		m.MediaType = types.OCIManifestSchema1
		m.Config.MediaType = types.OCIConfigJSON
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("recompress: %w", err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("recompress: %w", err)
	}
	out, err := partial.CompressedToImage(&recompressedImage{
		mediaType:   m.MediaType,
		rawManifest: rawManifest,
		rawConfig:   rawConfig,
		layers:      byDigest,
	})
	if err != nil {
		return nil, err
	}
	ls := make([]v1.Layer, len(m.Layers))
	for i, d := range m.Layers {
		l, ok := byDigest[d.Digest].(v1.Layer)
		if !ok {
			return out, nil
		}
		ls[i] = l
	}
	return &layersAsGiven{Image: out, layers: ls}, nil
}

// layersAsGiven is an image whose layers are the ones given, not
// partial's wrappers of them: a registry's layer stays one that a push
// mounts (remote.MountableLayer; see PutLazyLayer).
type layersAsGiven struct {
	v1.Image
	layers []v1.Layer
}

func (i *layersAsGiven) Layers() ([]v1.Layer, error) { return slices.Clone(i.layers), nil }

func (i *layersAsGiven) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return i.Image.LayerByDigest(h)
}

// recompressLayer writes l's content compressed as c to a new blob.
func (s *Store) recompressLayer(ctx context.Context, l v1.Layer, c Compression) (*storeLayer, error) {
	want, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// An uncompressed blob's digest is its diffID, which its reader
	// checks: no need to hash it again.
	known := v1.Hash{}
	if mt, err := l.MediaType(); err == nil && isUncompressed(mt) {
		if d, err := l.Digest(); err == nil && d == want {
			known = want
		}
	}
	nl, err := s.writeLayer(ctx, c, func(w io.Writer) error {
		_, err := io.Copy(w, rc)
		return err
	}, known)
	if err != nil {
		return nil, err
	}
	sl := nl.(*storeLayer)
	if sl.diffID != want {
		return nil, fmt.Errorf("layer %s: content has diffID %s, want %s", sl.desc.Digest, sl.diffID, want)
	}
	return sl, nil
}

// recompressedImage is the core of the image Recompress returns.
type recompressedImage struct {
	mediaType              types.MediaType
	rawManifest, rawConfig []byte
	layers                 map[v1.Hash]partial.CompressedLayer
}

var _ partial.CompressedImageCore = (*recompressedImage)(nil)

func (r *recompressedImage) MediaType() (types.MediaType, error) { return r.mediaType, nil }
func (r *recompressedImage) RawManifest() ([]byte, error)        { return r.rawManifest, nil }
func (r *recompressedImage) RawConfigFile() ([]byte, error)      { return r.rawConfig, nil }

func (r *recompressedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := r.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("recompressed image has no layer %s", h)
}
