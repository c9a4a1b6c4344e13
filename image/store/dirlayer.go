package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/image/layer"
)

// CommitLayerDir makes dir, an overlayfs upperdir whose changes are a
// step's layer (a snapshot's writable layer), a layer of the store kept
// as its directory only: dir becomes layers/<diffID> (renamed; it must be
// on the store's file system) and its tar, layer.WriteOverlayDiff of it
// (with sourceDateEpoch when not nil), is not written. One pass over dir
// hashes the tar (its diffID) and, on a second goroutine, each file's
// content, from which the directory's tree digests are recorded without
// reading it again. The layer's blob, named by its diffID as StageLayer's
// is (media type types.OCIUncompressedLayer), is then a lazy one (IsLazy):
// whatever reads it gets the tar written again from the directory, checked
// against the diffID as it streams (a changed directory fails there, with
// a *CorruptBlobError). When the store has the layer already, dir is left
// alone.
//
// A crash before it returns leaves no record of the layer: at most its
// directory, without a blob or a lazy record, which the next commit of
// the layer takes (when it is the layer) or replaces, and collection
// removes. The directory is then the
// layer's only copy: a collection keeps it as long as an image or a
// cache record lists the layer (as it keeps blobs); removed by other
// means, the layer is gone (a cache record of it is damaged, and its step
// runs again; an image of it cannot be exported).
//
// tree's Known and Sums (layer.TreeOptions) serve the tree digest of the
// layer's directory: Sums, when not nil, is given the content digest of
// each of its regular files.
func (s *Store) CommitLayerDir(ctx context.Context, dir string, sourceDateEpoch *time.Time, tree layer.TreeOptions) (v1.Layer, error) {
	rec := lazyLayer{Dir: true}
	if sourceDateEpoch != nil {
		e := sourceDateEpoch.UnixNano()
		rec.SourceDateEpoch = &e
	}
	sums := layer.NewFileSums()
	tree.Files = sums
	differ := sha256.New()
	counter := &countWriter{}
	w := &ctxWriter{ctx: ctx, w: io.MultiWriter(differ, counter)}
	err := layer.WriteOverlayDiff(ctx, w, dir, append(rec.options(), layer.WithFileSums(sums))...)
	if err != nil {
		return nil, fmt.Errorf("commit layer: %w", err)
	}
	diffID := hashOf(differ)
	rec.Layer = v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: counter.n, Digest: diffID}
	l := &storeLayer{store: s, path: s.BlobPath(diffID), desc: rec.Layer, diffID: diffID}
	if err := s.adoptCommitted(ctx, diffID, dir, &tree, rec); err != nil {
		return nil, fmt.Errorf("commit layer %s: %w", diffID, err)
	}
	if tree.Sums != nil && len(tree.Sums) == 0 {
		// The store had the layer: the sums are its directory's.
		if _, err := layer.DigestTreeWith(ctx, s.LayerPath(diffID), tree); err != nil {
			return nil, fmt.Errorf("commit layer %s: %w", diffID, err)
		}
	}
	return l, nil
}

// adoptCommitted makes dir the layer directory of diffID, with its tree
// digests made with tree and its lazy record rec, unless the store has
// the layer already.
func (s *Store) adoptCommitted(ctx context.Context, diffID v1.Hash, dir string, tree *layer.TreeOptions, rec lazyLayer) error {
	dst := s.LayerPath(diffID)
	if s.hasLayer(diffID) {
		// Its directory, checked, if it has one that is as it was made
		// (a changed one is removed, and dir takes its place).
		if ok, err := s.existing(ctx, diffID); ok || err != nil {
			return err
		}
	} else if _, err := os.Lstat(dst); err == nil {
		// A directory without a blob or a record: another commit of
		// the layer under way (a build for several platforms commits
		// the same layers at once), or one that a crash left before
		// its record was written. It is kept if it is this layer, else
		// dir takes its place.
		if ok, err := s.adoptTheirs(ctx, diffID, rec); ok || err != nil {
			return err
		}
		if err := s.RemoveLayerDir(diffID); err != nil {
			return err
		}
	}
	renamed, err := s.renameLayerDir(ctx, diffID, dir)
	if err != nil {
		return err
	}
	if !renamed { // another commit made it first
		if s.hasLayer(diffID) {
			return nil
		}
		if ok, err := s.adoptTheirs(ctx, diffID, rec); ok || err != nil {
			return err
		}
		return fmt.Errorf("layer directory %s, which another commit made, is not this layer", dst)
	}
	if err := s.recordCommitted(ctx, diffID, tree, rec); err != nil {
		// Not a layer of the store: its directory goes (a disk that is
		// full gets its space back).
		return errors.Join(err, s.RemoveLayerDir(diffID))
	}
	return nil
}

// recordCommitted writes the tree digests (made with tree) and the lazy
// record rec of the layer directory of diffID, just made.
func (s *Store) recordCommitted(ctx context.Context, diffID v1.Hash, tree *layer.TreeOptions, rec lazyLayer) error {
	d, err := layer.DigestTreeWith(ctx, s.LayerPath(diffID), *tree)
	if err != nil {
		return err
	}
	if err := s.writeTree(diffID, d, s.boot); err != nil {
		return err
	}
	s.checked.Store(diffID, true)
	if err := s.recordDir(diffID, rec); err != nil {
		return err
	}
	return markUsed(s.LayerPath(diffID))
}

// hasLayer reports whether the store has the layer diffID: its blob, or
// a lazy record of it.
func (s *Store) hasLayer(diffID v1.Hash) bool {
	_, err := os.Stat(s.BlobPath(diffID))
	return err == nil || s.IsLazy(diffID)
}

// recordDir writes rec, naming the layer directory of diffID as it is
// now, as the layer's lazy record.
func (s *Store) recordDir(diffID v1.Hash, rec lazyLayer) error {
	var st unix.Stat_t
	if err := unix.Lstat(s.LayerPath(diffID), &st); err != nil {
		return &os.PathError{Op: "lstat", Path: s.LayerPath(diffID), Err: err}
	}
	rec.Ino = st.Ino
	return s.writeLazy(diffID, rec)
}

// adoptTheirs records the layer directory of diffID, which another commit
// made, as the layer's (rec) when its tar, written with rec's options,
// has diffID, and reports whether it did.
func (s *Store) adoptTheirs(ctx context.Context, diffID v1.Hash, rec lazyLayer) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(s.LayerPath(diffID), &st); err != nil {
		return false, nil // gone meanwhile
	}
	h := sha256.New()
	if err := layer.WriteOverlayDiff(ctx, h, s.LayerPath(diffID), rec.options()...); err != nil || hashOf(h) != diffID {
		return false, ctx.Err()
	}
	rec.Ino = st.Ino
	return true, s.writeLazy(diffID, rec)
}

// options are the options of the tar writer that writes the layer of a
// record with Dir.
func (ll lazyLayer) options() []layer.Option {
	if ll.SourceDateEpoch == nil {
		return nil
	}
	return []layer.Option{layer.WithSourceDateEpoch(time.Unix(0, *ll.SourceDateEpoch))}
}

// dirTar returns the tar of the layer d that the store keeps as its
// directory only (CommitLayerDir), written again from it, or false when
// d is not such a layer (or its directory is gone).
func (s *Store) dirTar(d v1.Hash) (io.ReadCloser, bool) {
	ll, ok := s.lazy(d)
	if !ok || !ll.Dir {
		return nil, false
	}
	_ = markUsed(s.LayerPath(d)) // only a hint for collection
	pr, pw := io.Pipe()
	go func() {
		// A reader that stops early closes pr, which fails the write.
		pw.CloseWithError(layer.WriteOverlayDiff(context.Background(), pw, s.LayerPath(d), ll.options()...))
	}()
	return pr, true
}
