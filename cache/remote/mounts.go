package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/pgzip"

	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/store"
)

// mountsDir is where a root keeps its cache mounts, one directory per id
// (url.PathEscape'd), as package executor makes them.
func mountsDir(s *store.Store) string { return filepath.Join(s.Root(), "cache", "mounts") }

// localMount is a cache mount of this root, written as a layer.
type localMount struct {
	Mount
	layer v1.Layer
}

// mountLayers writes each cache mount directory of s's root as a layer
// blob of s. Work files of the executor (".new-*" directories, "*.lock"
// files) are not mounts.
func mountLayers(ctx context.Context, s *store.Store) ([]localMount, error) {
	ents, err := os.ReadDir(mountsDir(s))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []localMount
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		id, err := url.PathUnescape(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(mountsDir(s), e.Name())
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, err
		}
		l, err := s.WriteLayer(ctx, func(w io.Writer) error { return layer.WriteDir(ctx, w, dir) })
		if err != nil {
			return nil, fmt.Errorf("cache mount %s: %w", id, err)
		}
		m := Mount{ID: id, Mode: uint32(fi.Mode().Perm() | fi.Mode()&(os.ModeSetgid|os.ModeSticky))}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			m.UID, m.GID = int(st.Uid), int(st.Gid)
		}
		if m.Layer.Digest, err = l.Digest(); err != nil {
			return nil, err
		}
		if m.Layer.Size, err = l.Size(); err != nil {
			return nil, err
		}
		if m.Layer.MediaType, err = l.MediaType(); err != nil {
			return nil, err
		}
		if m.DiffID, err = l.DiffID(); err != nil {
			return nil, err
		}
		out = append(out, localMount{Mount: m, layer: l})
	}
	return out, nil
}

// mountHit is a cache mount found in a target.
type mountHit struct {
	mount  Mount
	target Target
}

func (src *Source) restoreMounts(ctx context.Context) {
	restoreMounts(ctx, src.store, src.mounts, src.warn)
}

// restoreMounts extracts each mount that the root lacks, the first of
// an id winning, and returns how many it restored. A mount that cannot be
// restored is a warning; the build then starts that cache mount empty.
func restoreMounts(ctx context.Context, s *store.Store, ms []mountHit, warn func(string)) int {
	done := map[string]bool{}
	n := 0
	for _, m := range ms {
		if done[m.mount.ID] {
			continue
		}
		done[m.mount.ID] = true
		dir := filepath.Join(mountsDir(s), url.PathEscape(m.mount.ID))
		if _, err := os.Lstat(dir); err == nil {
			continue // the local one is at least as fresh
		}
		if err := restoreMount(ctx, m, dir); err != nil {
			if ctx.Err() != nil {
				return n
			}
			warn(fmt.Sprintf("%s: cache mount %s: %v; it starts empty", m.target, m.mount.ID, err))
			continue
		}
		n++
	}
	return n
}

// restoreMount extracts m's layer into a new directory beside dir and
// renames it to dir, once both its digest and diffID check out.
func restoreMount(ctx context.Context, m mountHit, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // fails harmlessly once renamed
	rc, err := m.target.blob(ctx, m.mount.Layer.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	digester := sha256.New()
	zr, err := pgzip.NewReader(io.TeeReader(rc, digester))
	if err != nil {
		return fmt.Errorf("layer %s: %w", m.mount.Layer.Digest, err)
	}
	defer zr.Close()
	differ := sha256.New()
	if err := layer.Extract(ctx, io.TeeReader(zr, differ), tmp); err != nil {
		return err
	}
	if _, err := io.Copy(differ, zr); err != nil {
		return err
	}
	if _, err := io.Copy(digester, rc); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(digester.Sum(nil)); got != m.mount.Layer.Digest.String() {
		return fmt.Errorf("layer %s: content has digest %s", m.mount.Layer.Digest, got)
	}
	if got := "sha256:" + hex.EncodeToString(differ.Sum(nil)); got != m.mount.DiffID.String() {
		return fmt.Errorf("layer %s: content has diffID %s, want %s", m.mount.Layer.Digest, got, m.mount.DiffID)
	}
	if err := errors.Join(os.Chown(tmp, m.mount.UID, m.mount.GID), os.Chmod(tmp, os.FileMode(m.mount.Mode&0o777)|modeBits(m.mount.Mode))); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return err
	}
	return nil
}

// modeBits turns the setgid and sticky bits kept in Mount.Mode back into
// an os.FileMode's.
func modeBits(m uint32) os.FileMode {
	return os.FileMode(m) & (os.ModeSetgid | os.ModeSticky)
}
