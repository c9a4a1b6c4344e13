package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// collect removes the blobs that no entry of im reaches and that were last
// modified before cutoff, and the layer directories that no entry's config
// lists and whose change time is before cutoff. The caller holds the lock.
func (s *Store) collect(ctx context.Context, im *v1.IndexManifest, cutoff time.Time) error {
	blobs := map[string]bool{}
	diffIDs := map[string]bool{}
	var walk func(d v1.Descriptor) error
	walk = func(d v1.Descriptor) error {
		if blobs[d.Digest.Hex] {
			return nil
		}
		blobs[d.Digest.Hex] = true
		switch d.MediaType {
		case types.OCIManifestSchema1, types.DockerManifestSchema2:
			img, err := s.readImage(d)
			if err != nil {
				return err
			}
			blobs[img.manifest.Config.Digest.Hex] = true
			for _, l := range img.manifest.Layers {
				blobs[l.Digest.Hex] = true
			}
			for _, id := range img.config.RootFS.DiffIDs {
				diffIDs[id.Hex] = true
			}
		case types.OCIImageIndex, types.DockerManifestList:
			b, err := s.readBlob(d.Digest)
			if err != nil {
				return err
			}
			child, err := v1.ParseIndexManifest(bytes.NewReader(b))
			if err != nil {
				return err
			}
			for _, c := range child.Manifests {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, d := range im.Manifests {
		if err := walk(d); err != nil {
			// Without all the roots we cannot tell garbage: keep everything.
			return fmt.Errorf("collect garbage: %s: %w", d.Digest, err)
		}
	}
	if err := s.refRoots(blobs, diffIDs); err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}

	entries, err := os.ReadDir(s.blobsDir())
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if blobs[e.Name()] {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("collect garbage: %w", err)
		}
		if info.ModTime().Before(cutoff) {
			if err := os.Remove(filepath.Join(s.blobsDir(), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("collect garbage: %w", err)
			}
		}
	}

	entries, err = os.ReadDir(s.layersDir())
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if diffIDs[e.Name()] {
			continue
		}
		p := filepath.Join(s.layersDir(), e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			continue
		}
		if time.Unix(st.Ctim.Unix()).Before(cutoff) {
			// Move it out of sight first, so that no one finds it half gone.
			tmp := s.tempName()
			if err := os.Rename(p, tmp); err != nil {
				return fmt.Errorf("collect garbage: %w", err)
			}
			if err := os.RemoveAll(tmp); err != nil {
				return fmt.Errorf("collect garbage: %w", err)
			}
		}
	}
	if err := s.collectRecords(ctx, blobs, diffIDs, cutoff); err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	// The tree digests of layer directories that are gone.
	trees, err := os.ReadDir(s.treesDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("collect garbage: %w", err)
	}
	for _, e := range trees {
		if _, err := os.Lstat(filepath.Join(s.layersDir(), e.Name())); errors.Is(err, os.ErrNotExist) {
			if err := os.Remove(filepath.Join(s.treesDir(), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("collect garbage: %w", err)
			}
		}
	}
	return nil
}

// collectRecords removes the small records kept beside blobs once what
// they describe is garbage: a compressed/<diffID>-<compression> record
// (see rememberCompressed) whose compressed blob is gone, or whose layer
// nothing keeps, and a lazy/<diffID> record (see PutLazyLayer) of a layer
// nothing keeps, or of a layer kept as its directory (CommitLayerDir)
// whose directory is gone; a lazy/bad-<digest> mark of a failed fetch
// once it is older than cutoff. blobs and diffIDs are what the images and
// references keep (by hex).
func (s *Store) collectRecords(ctx context.Context, blobs, diffIDs map[string]bool, cutoff time.Time) error {
	kept := func(hex string) bool { return blobs[hex] || diffIDs[hex] }
	old := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && fi.ModTime().Before(cutoff)
	}
	for _, dir := range []string{"compressed", "lazy"} {
		d := filepath.Join(s.root, dir)
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := filepath.Join(d, e.Name())
			var drop bool
			switch hex, c, _ := strings.Cut(e.Name(), "-"); {
			case dir == "lazy" && hex == "bad":
				drop = old(p)
			case dir == "lazy":
				drop = !kept(hex) && old(p) || s.dirGone(hex)
			default:
				var desc v1.Descriptor
				b, err := os.ReadFile(p)
				gone := err != nil || json.Unmarshal(b, &desc) != nil || checkHash(desc.Digest) != nil
				if !gone {
					_, err := os.Stat(s.BlobPath(desc.Digest))
					gone = errors.Is(err, os.ErrNotExist)
				}
				drop = (gone || !kept(hex) || c == "") && old(p)
			}
			if drop {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
		}
	}
	return nil
}

// dirGone reports whether lazy/<hex> records a layer kept as its
// directory, and that directory is gone.
func (s *Store) dirGone(hex string) bool {
	d, err := v1.NewHash("sha256:" + hex)
	if err != nil {
		return false
	}
	ll, ok := s.lazyRecord(d)
	return ok && ll.Dir && !s.IsLazy(d)
}

// Collect removes, under the index lock, the blobs and unpacked layers
// that no image and no reference keeps and that were last used more than
// GCGrace ago: a blob a running build has just written or used is never
// collected.
func (s *Store) Collect(ctx context.Context) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	defer unlock()
	im, err := s.readIndex()
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	return s.collect(ctx, im, time.Now().Add(-GCGrace))
}
