package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ref is a named reference that keeps blobs and unpacked layers from
// garbage collection, for records that are not images (the build cache).
type ref struct {
	Blobs   []v1.Hash `json:"blobs"`
	DiffIDs []v1.Hash `json:"diffIDs,omitempty"`
}

func (s *Store) refsDir() string { return filepath.Join(s.root, "refs") }

// Ref records that name (a path of safe components, like "cache/ab12…")
// uses the blobs and the unpacked layers of the diffIDs: collection keeps
// them as long as the reference exists.
func (s *Store) Ref(ctx context.Context, name string, blobs, diffIDs []v1.Hash) error {
	p, err := s.refPath(name)
	if err != nil {
		return err
	}
	b, err := json.Marshal(ref{Blobs: blobs, DiffIDs: diffIDs})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("writing reference %s: %w", name, err)
	}
	return s.writeFileAtomic(p, b, 0o644)
}

// Unref removes the reference name; a missing one is not an error.
func (s *Store) Unref(ctx context.Context, name string) error {
	p, err := s.refPath(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing reference %s: %w", name, err)
	}
	return nil
}

func (s *Store) refPath(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." || strings.HasPrefix(c, ".") {
			return "", fmt.Errorf("invalid reference name %q", name)
		}
	}
	return filepath.Join(s.refsDir(), filepath.FromSlash(name)), nil
}

// refRoots adds what every reference keeps to blobs and diffIDs.
func (s *Store) refRoots(blobs, diffIDs map[string]bool) error {
	err := filepath.WalkDir(s.refsDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var r ref
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("reading reference %s: %w", p, err)
		}
		for _, h := range r.Blobs {
			blobs[h.Hex] = true
		}
		for _, h := range r.DiffIDs {
			diffIDs[h.Hex] = true
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
