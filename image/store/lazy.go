package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// RemoteLayers opens a layer blob that a registry holds: desc in the
// repository repo ("host/path"). The layer it returns should be one that
// go-containerregistry's remote.Write mounts across repositories of the
// registry (a *remote.MountableLayer, as remote.Layer returns), and need
// not be fetched before it is read.
type RemoteLayers func(ctx context.Context, repo string, desc v1.Descriptor) (v1.Layer, error)

// WithRemoteLayers sets how the Store fetches a lazy layer (see
// PutLazyLayer): without it, a lazy layer cannot be read.
func WithRemoteLayers(fn RemoteLayers) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("store remote layers: nil function")
		}
		o.remote = fn
		return nil
	}
}

// lazyLayer is where a lazy layer's content is: the compressed blob desc
// in the registry repository Repo, or, with Dir, the store's layer
// directory of the layer (CommitLayerDir), whose tar (Layer) is written
// again from it, with SourceDateEpoch (Unix nanoseconds) when set. Ino is
// that directory's inode number: a directory that another commit or an
// unpack put in its place is not the one the record describes.
type lazyLayer struct {
	Repo            string        `json:"repo,omitempty"`
	Layer           v1.Descriptor `json:"layer"`
	Dir             bool          `json:"dir,omitempty"`
	SourceDateEpoch *int64        `json:"sourceDateEpoch,omitempty"`
	Ino             uint64        `json:"ino,omitempty"`
}

func (s *Store) lazyPath(diffID v1.Hash) string {
	return filepath.Join(s.root, "lazy", diffID.Hex)
}

// PutLazyLayer records that the layer whose tar has diffID and size bytes
// is the blob desc (compressed) of the registry repository repo, without
// fetching it, and returns the descriptor of the layer as the store keeps
// a step's (its tar, see StageLayer; the blob named by diffID). The blob
// is fetched (with the function of WithRemoteLayers) when something reads
// it: unpacking the layer (LayerDirs, LayerDir), an export; a push to
// repo's registry mounts it from repo instead (Recompress, Compress).
// An image or a cache record may name the layer before it is fetched.
func (s *Store) PutLazyLayer(ctx context.Context, repo string, desc v1.Descriptor, diffID v1.Hash, size int64) (v1.Descriptor, error) {
	ud := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: diffID}
	if err := checkHash(diffID); err != nil || size <= 0 {
		return v1.Descriptor{}, fmt.Errorf("lazy layer %s: diffID %s of %d bytes: not a layer", desc.Digest, diffID, size)
	}
	if _, err := os.Stat(s.BlobPath(diffID)); err == nil {
		return ud, touch(s.BlobPath(diffID))
	}
	if ll, ok := s.lazy(diffID); ok && ll.Dir {
		return ud, nil // kept as its directory: the store has it
	}
	if _, err := os.Stat(s.badPath(desc.Digest)); err == nil {
		return v1.Descriptor{}, fmt.Errorf("lazy layer %s of %s: it failed to fetch before", desc.Digest, repo)
	}
	if err := s.writeLazy(diffID, lazyLayer{Repo: repo, Layer: v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}}); err != nil {
		return v1.Descriptor{}, fmt.Errorf("lazy layer %s: %w", desc.Digest, err)
	}
	return ud, nil
}

// writeLazy stores ll as the record of the lazy layer diffID.
func (s *Store) writeLazy(diffID v1.Hash, ll lazyLayer) error {
	if err := os.MkdirAll(filepath.Dir(s.lazyPath(diffID)), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(ll)
	if err != nil {
		return err
	}
	return s.writeFileAtomic(s.lazyPath(diffID), b, 0o644)
}

// lazy returns the record of a lazy layer whose tar, the blob d, the
// store does not have yet: one in a registry, or one kept as its layer
// directory (then only while the directory exists).
func (s *Store) lazy(d v1.Hash) (lazyLayer, bool) {
	if _, err := os.Stat(s.BlobPath(d)); err == nil {
		return lazyLayer{}, false
	}
	ll, ok := s.lazyRecord(d)
	if !ok {
		return lazyLayer{}, false
	}
	if ll.Dir {
		var st unix.Stat_t
		if ll.Layer.Digest != d || unix.Lstat(s.LayerPath(d), &st) != nil || st.Ino != ll.Ino {
			return lazyLayer{}, false
		}
	}
	return ll, true
}

// IsUnfetched reports whether the blob d is a lazy layer's tar that is
// in a registry and not fetched (see PutLazyLayer): one that reading
// would fetch.
func (s *Store) IsUnfetched(d v1.Hash) bool {
	ll, ok := s.lazy(d)
	return ok && !ll.Dir
}

// lazyRecord reads the lazy record of d, whatever the store has besides.
func (s *Store) lazyRecord(d v1.Hash) (lazyLayer, bool) {
	b, err := os.ReadFile(s.lazyPath(d))
	if err != nil {
		return lazyLayer{}, false
	}
	var ll lazyLayer
	if err := json.Unmarshal(b, &ll); err != nil || checkHash(ll.Layer.Digest) != nil {
		return lazyLayer{}, false
	}
	return ll, true
}

// IsLazy reports whether the blob d is a lazy layer's tar that the store
// has not fetched (see PutLazyLayer) or keeps as its layer directory only
// (see CommitLayerDir): it is missing, and it is no fault.
func (s *Store) IsLazy(d v1.Hash) bool {
	_, ok := s.lazy(d)
	return ok
}

// remoteLayer returns the registry's layer of a lazy layer whose tar has
// diffID, described as the record has it (no request is made before it
// is read), and still mountable.
func (s *Store) remoteLayer(ctx context.Context, ll lazyLayer, diffID v1.Hash) (v1.Layer, error) {
	if s.remote == nil {
		return nil, fmt.Errorf("layer %s is in %s, not fetched, and this command does not fetch layers", ll.Layer.Digest, ll.Repo)
	}
	l, err := s.remote(ctx, ll.Repo, ll.Layer)
	if err != nil {
		return nil, err
	}
	if ml, ok := l.(*remote.MountableLayer); ok {
		return &remote.MountableLayer{Layer: &remoteDescribed{Layer: ml.Layer, desc: ll.Layer, diffID: diffID}, Reference: ml.Reference}, nil
	}
	return &remoteDescribed{Layer: l, desc: ll.Layer, diffID: diffID}, nil
}

// fetchLazy fetches the lazy layer whose tar is the blob diffID, when it
// is one: the compressed blob from its registry, checked, then its tar
// (Decompress), checked against diffID.
func (s *Store) fetchLazy(ctx context.Context, diffID v1.Hash) error {
	ll, ok := s.lazy(diffID)
	if !ok || ll.Dir {
		return nil // a layer kept as its directory is read from it
	}
	rl, err := s.remoteLayer(ctx, ll, diffID)
	if err != nil {
		return err
	}
	err = s.PutBlob(ctx, ll.Layer.Digest, rl.Compressed)
	if err == nil {
		_, err = s.Decompress(ctx, ll.Layer, diffID)
	}
	if err != nil && ctx.Err() == nil {
		// What the registry has is not the layer (or is gone): forget
		// the lazy layer, so that its cache records are found damaged and
		// their steps run again, and refuse it from now on.
		err = errors.Join(err, os.WriteFile(s.badPath(ll.Layer.Digest), nil, 0o644), os.Remove(s.lazyPath(diffID)))
	}
	if err != nil {
		return fmt.Errorf("fetching layer %s from %s (kiln will not take it from there again; run the build again): %w", ll.Layer.Digest, ll.Repo, err)
	}
	return nil
}

// badPath marks the registry blob d as one that failed to fetch.
func (s *Store) badPath(d v1.Hash) string {
	return filepath.Join(s.root, "lazy", "bad-"+d.Hex)
}

// FetchLayers fetches the lazy layers of img (see PutLazyLayer), for
// what reads their blobs.
func (s *Store) FetchLayers(ctx context.Context, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if err := s.fetchLazy(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// remoteDescribed is a registry's layer with the descriptor that a lazy
// record gives it, so that nothing asks the registry for it.
type remoteDescribed struct {
	v1.Layer
	desc   v1.Descriptor
	diffID v1.Hash
}

func (l *remoteDescribed) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *remoteDescribed) Size() (int64, error)                { return l.desc.Size, nil }
func (l *remoteDescribed) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *remoteDescribed) DiffID() (v1.Hash, error)            { return l.diffID, nil }

// Uncompressed is not what an export reads: it is made from Compressed.
func (l *remoteDescribed) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return decompress(rc)
}
