package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/image/layer"
)

// LayerDirs returns, base first, the directory layers/<diffid> of each of
// img's layers, for use as overlay lowerdirs. A layer is unpacked (with
// layer.Extract, checking its digest and diffID on the way) the first time it
// is asked for and shared from then on. The directories must not be changed.
func (s *Store) LayerDirs(ctx context.Context, img v1.Image) ([]string, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layer dirs: %w", err)
	}
	dirs := make([]string, len(layers))
	for i, l := range layers {
		d, err := s.layerDir(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("layer dirs: layer %d: %w", i, err)
		}
		dirs[i] = d
	}
	return dirs, nil
}

// layerDir returns the directory of l, unpacking it if it is missing.
func (s *Store) layerDir(ctx context.Context, l v1.Layer) (string, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return "", err
	}
	dir := s.LayerPath(diffID)
	ll, _ := s.lazyRecord(diffID)
	if ok, err := s.existing(ctx, diffID); ok || err != nil {
		return dir, err
	}
	if _, err := os.Stat(s.BlobPath(diffID)); ll.Dir && err != nil {
		return "", fmt.Errorf("layer %s: %w", diffID, ErrLayerLost)
	}

	if d, err := l.Digest(); err == nil && d == diffID {
		if err := s.fetchLazy(ctx, d); err != nil {
			return "", err
		}
	}
	tmp := s.tempName()
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // fails harmlessly once renamed
	if err := s.unpack(ctx, l, diffID, tmp); err != nil {
		return "", fmt.Errorf("unpack %s: %w", diffID, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another goroutine or process made it first: use theirs.
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			if err := markUsed(dir); err != nil {
				return "", err
			}
			return dir, s.checkOnce(ctx, diffID)
		}
		return "", err
	}
	if _, err := s.recordTree(ctx, diffID); err != nil {
		return "", fmt.Errorf("unpack %s: %w", diffID, err)
	}
	s.checked.Store(diffID, true)
	return dir, nil
}

// existing reports whether the layer directory of diffID exists and is
// as it was made (checkOnce), marking it used. One that changed since
// (tampered with, or damaged) is removed, with a warning, so that the
// caller makes it again from the layer's blob, whose digest is checked as
// it is read, or from a step's new diff.
func (s *Store) existing(ctx context.Context, diffID v1.Hash) (bool, error) {
	dir := s.LayerPath(diffID)
	if err := markUsed(dir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	err := s.checkOnce(ctx, diffID)
	if !errors.Is(err, ErrLayerDirChanged) {
		return err == nil, err
	}
	s.warn(fmt.Sprintf("layer directory %s (diffID %s) was changed since it was made: kiln makes it again from the layer", dir, diffID))
	if err := s.RemoveLayerDir(diffID); err != nil {
		return false, err
	}
	return false, nil
}

// ErrLayerLost is wrapped by the error of a layer that the store kept
// only as its layer directory (a step's, see CommitLayerDir) when that
// directory is damaged or gone: no copy of the layer is left.
var ErrLayerLost = errors.New("is lost: the store kept it only as its layer directory, which is damaged or gone; build the image again to make it")

// CheckLazy reports whether the blob d is lazy (IsLazy) and, for a layer
// that the store keeps only as its directory, checks the directory (once
// per epoch, as LayerDirs does, marking it used): a damaged one is
// removed, with a warning, and the error wraps ErrLayerLost. A cache hit
// on a layer whose blob is missing calls it, so that a step whose layer
// was lost runs again.
func (s *Store) CheckLazy(ctx context.Context, d v1.Hash) (bool, error) {
	ll, ok := s.lazy(d)
	if !ok || !ll.Dir {
		return ok, nil
	}
	ok, err := s.existing(ctx, d)
	if err != nil {
		return true, fmt.Errorf("check layer %s: %w", d, err)
	}
	if !ok {
		return true, fmt.Errorf("layer %s: %w", d, ErrLayerLost)
	}
	return true, nil
}

// checkOnce checks the layer directory of diffID (checkLayerDir) the first
// time this Store hands it out.
func (s *Store) checkOnce(ctx context.Context, diffID v1.Hash) error {
	if _, ok := s.checked.Load(diffID); ok {
		return nil
	}
	if err := s.checkLayerDir(ctx, diffID); err != nil {
		return err
	}
	s.checked.Store(diffID, true)
	return nil
}

// unpack extracts l into dir, checking the digest of the compressed stream
// (when the layer knows it) and the diffID of the uncompressed one.
func (s *Store) unpack(ctx context.Context, l v1.Layer, diffID v1.Hash, dir string) error {
	digest, err := l.Digest()
	if err != nil {
		return err
	}
	crc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer crc.Close()
	digester := sha256.New()
	rc, err := decompress(&readCloser{Reader: io.TeeReader(crc, digester), close: crc.Close})
	if err != nil {
		return err
	}
	defer rc.Close()
	differ := sha256.New()
	r := io.TeeReader(&ctxReader{ctx: ctx, r: rc}, differ)
	if err := layer.Extract(ctx, r, dir); err != nil {
		// A blob that does not match its digest is the cause to report
		// (a store blob's reader says so at its end), not what
		// decompressing or extracting its bytes made of it.
		if _, derr := io.Copy(digester, crc); derr != nil {
			return derr
		}
		if got := hashOf(digester); got != digest {
			return fmt.Errorf("layer %s: content has digest %s", digest, got)
		}
		return err
	}
	// Read what Extract left (the tar's end blocks, the gzip trailer) so
	// that both digests cover the whole stream.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if _, err := io.Copy(digester, crc); err != nil {
		return err
	}
	if got := hashOf(differ); got != diffID {
		return fmt.Errorf("layer %s: content has diffID %s, want %s (the config's)", digest, got, diffID)
	}
	if got := hashOf(digester); got != digest {
		return fmt.Errorf("layer %s: content has digest %s", digest, got)
	}
	return nil
}

// markUsed bumps the change time of a layer directory (a chmod to its own
// mode changes nothing else), which keeps it from being collected for
// GCGrace. Its modification time is the layer's and stays as it is.
func markUsed(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if err := unix.Chmod(dir, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: dir, Err: err}
	}
	return nil
}

// MarkLayerUsed marks the layer directory of diffID used, for garbage
// collection, without checking it; it fails with an error wrapping
// fs.ErrNotExist when the store does not have it.
func (s *Store) MarkLayerUsed(diffID v1.Hash) error { return markUsed(s.LayerPath(diffID)) }

// ExistingLayerDir returns the directory of the layer of diffID when the
// store has it unpacked and as it was made (checked, and marked used, as
// LayerDir does before handing one out; one that changed is removed, with
// a warning); ok is false when it has not.
func (s *Store) ExistingLayerDir(ctx context.Context, diffID v1.Hash) (dir string, ok bool, err error) {
	ok, err = s.existing(ctx, diffID)
	return s.LayerPath(diffID), ok, err
}

// LayerPath returns where LayerDir unpacks the layer of diffID, without
// unpacking it: the directory may not exist yet.
func (s *Store) LayerPath(diffID v1.Hash) string { return filepath.Join(s.layersDir(), diffID.Hex) }

// LayerDir returns the directory of one layer, unpacked on first use, as
// LayerDirs does for all of an image's layers.
func (s *Store) LayerDir(ctx context.Context, l v1.Layer) (string, error) {
	return s.layerDir(ctx, l)
}

// AdoptLayerDir makes dir, an unpacked layer in overlay form whose tar
// has diffID (a snapshot's writable layer, just diffed), the store's
// directory of that layer, by renaming it, instead of unpacking the layer
// again. When the store has the layer already, dir is left alone. dir
// must be on the store's file system.
func (s *Store) AdoptLayerDir(ctx context.Context, diffID v1.Hash, dir string) (string, error) {
	dst := s.LayerPath(diffID)
	if ok, err := s.existing(ctx, diffID); ok || err != nil {
		return dst, err
	}
	if renamed, err := s.renameLayerDir(ctx, diffID, dir); err != nil || !renamed {
		if err != nil {
			return "", fmt.Errorf("adopting layer %s: %w", diffID, err)
		}
		return dst, nil
	}
	if _, err := s.recordTree(ctx, diffID); err != nil {
		return "", fmt.Errorf("adopting layer %s: %w", diffID, err)
	}
	s.checked.Store(diffID, true)
	return dst, markUsed(dst)
}

// renameLayerDir renames dir to the layer directory of diffID. When
// another goroutine or process made that first, it leaves dir, checks
// theirs (checkOnce) and reports false.
func (s *Store) renameLayerDir(ctx context.Context, diffID v1.Hash, dir string) (bool, error) {
	if err := os.MkdirAll(s.layersDir(), 0o755); err != nil {
		return false, err
	}
	dst := s.LayerPath(diffID)
	if err := os.Rename(dir, dst); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			if err := markUsed(dst); err != nil {
				return false, err
			}
			return false, s.checkOnce(ctx, diffID)
		}
		return false, err
	}
	return true, nil
}
