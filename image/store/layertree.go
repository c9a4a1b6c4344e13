package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/image/layer"
)

// ErrLayerDirChanged is wrapped by the error of a layer directory whose
// tree no longer has the digest it had when it was unpacked.
var ErrLayerDirChanged = errors.New("was changed since it was unpacked")

// treesDir holds, per layer directory, its treeRecord as JSON:
// layertrees/<diffid hex>, written when the directory is made.
func (s *Store) treesDir() string { return filepath.Join(s.root, "layertrees") }

func (s *Store) treePath(diffID v1.Hash) string { return filepath.Join(s.treesDir(), diffID.Hex) }

// treeRecord is what layertrees/<diffid hex> holds.
type treeRecord struct {
	layer.TreeDigests
	// Checked is the epoch in which the directory was last made or
	// checked against TreeDigests (see layercheck.go); empty in a
	// record an older kiln wrote.
	Checked string `json:"checked,omitempty"`
	// Unsynced is the id of the boot in which the directory was written,
	// until a full check in a later boot has read it back from the disk:
	// kiln does not force a layer directory's data to the disk (see
	// layercheck.go). Empty once so read, and in a record an older kiln
	// wrote.
	Unsynced string `json:"unsynced,omitempty"`
}

// recordTree computes and stores the digests of the layer directory of
// diffID, just written.
func (s *Store) recordTree(ctx context.Context, diffID v1.Hash) (layer.TreeDigests, error) {
	return s.recordTreeIf(ctx, diffID, s.boot, func(layer.TreeDigests) bool { return true })
}

// readTree returns the stored record of the layer directory of diffID;
// ok is false when there is none (a directory made before kiln kept
// them, or whose record was lost).
func (s *Store) readTree(diffID v1.Hash) (r treeRecord, ok bool, err error) {
	b, err := os.ReadFile(s.treePath(diffID))
	if errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Tree.Hex == "" {
		return treeRecord{}, false, nil // a damaged record is recomputed
	}
	return r, true, nil
}

// writeTree stores d as the digests of diffID's directory, checked in
// the current epoch; unsynced is the record's Unsynced.
func (s *Store) writeTree(diffID v1.Hash, d layer.TreeDigests, unsynced string) error {
	b, err := json.Marshal(treeRecord{TreeDigests: d, Checked: s.currentEpoch(), Unsynced: unsynced})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.treesDir(), 0o700); err != nil {
		return err
	}
	return s.writeFileAtomic(s.treePath(diffID), b, 0o600)
}

// checkLayerDir makes sure that the layer directory of diffID is as it was
// unpacked, before a container uses it, unless its record says it was
// made or checked in the current epoch. The cheap check (the directory's
// metadata digest, lstat only) comes first; when it differs, the whole tree
// is hashed, and a tree that still matches has its metadata digest
// renewed. A directory written in an earlier boot and not read back from
// the disk since (its record's Unsynced) is hashed whole, once. A
// directory without stored digests has them computed now (trust on first
// use, for roots made before kiln kept them). A directory that passes is
// recorded as checked in the current epoch.
func (s *Store) checkLayerDir(ctx context.Context, diffID v1.Hash) error {
	want, ok, err := s.readTree(diffID)
	if err != nil {
		return fmt.Errorf("check layer directory %s: %w", diffID, err)
	}
	if !ok || (want.Unsynced != "" && want.Unsynced != s.boot) {
		return s.VerifyLayerDir(ctx, diffID)
	}
	if e := s.currentEpoch(); e != "" && want.Checked == e {
		return nil
	}
	got, err := layer.DigestTree(ctx, s.LayerPath(diffID), false)
	if err != nil {
		return fmt.Errorf("check layer directory %s: %w", diffID, err)
	}
	if got.Meta == want.Meta {
		if err := s.writeTree(diffID, want.TreeDigests, want.Unsynced); err != nil {
			return fmt.Errorf("check layer directory %s: %w", diffID, err)
		}
		return nil
	}
	return s.VerifyLayerDir(ctx, diffID)
}

// VerifyLayerDir hashes the whole tree of the layer directory of diffID
// and fails, with an error wrapping ErrLayerDirChanged that names it and
// the repair, when it differs from the digest stored when it was unpacked
// (a directory without one has it computed now). A directory that matches
// has its metadata digest renewed; one written in an earlier boot has now
// been read back from the disk, and its record says so.
func (s *Store) VerifyLayerDir(ctx context.Context, diffID v1.Hash) error {
	want, ok, err := s.readTree(diffID)
	if err != nil {
		return fmt.Errorf("verify layer directory %s: %w", diffID, err)
	}
	unsynced := ""
	if want.Unsynced == s.boot {
		unsynced = want.Unsynced // read from the page cache, not the disk
	}
	got, err := s.recordTreeIf(ctx, diffID, unsynced, func(got layer.TreeDigests) bool { return !ok || got.Tree == want.Tree })
	if err != nil {
		return fmt.Errorf("verify layer directory %s: %w", diffID, err)
	}
	if ok && got.Tree != want.Tree {
		return fmt.Errorf("layer directory %s (diffID %s) %w (its tree hashes to %s, want %s); run kiln cache verify --repair",
			s.LayerPath(diffID), diffID, ErrLayerDirChanged, got.Tree, want.Tree)
	}
	return nil
}

// recordTreeIf computes the digests of diffID's directory and stores them,
// with unsynced as the record's Unsynced, when keep says so.
func (s *Store) recordTreeIf(ctx context.Context, diffID v1.Hash, unsynced string, keep func(layer.TreeDigests) bool) (layer.TreeDigests, error) {
	d, err := layer.DigestTree(ctx, s.LayerPath(diffID), true)
	if err != nil || !keep(d) {
		return d, err
	}
	return d, s.writeTree(diffID, d, unsynced)
}

// LayerDirIDs returns the diffIDs of the store's unpacked layer
// directories.
func (s *Store) LayerDirIDs(ctx context.Context) ([]v1.Hash, error) {
	ents, err := os.ReadDir(s.layersDir())
	if err != nil {
		return nil, fmt.Errorf("list layer directories: %w", err)
	}
	var ids []v1.Hash
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := v1.NewHash("sha256:" + e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		ids = append(ids, h)
	}
	return ids, nil
}

// RemoveLayerDir removes the layer directory of diffID and its digests, as
// verify --repair does with a changed one: the next use unpacks it again
// from its blob. A container that has it mounted keeps its view.
func (s *Store) RemoveLayerDir(diffID v1.Hash) error {
	s.checked.Delete(diffID)
	tmp := s.tempName()
	if err := os.Rename(s.LayerPath(diffID), tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove layer directory %s: %w", diffID, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove layer directory %s: %w", diffID, err)
	}
	if err := os.Remove(s.treePath(diffID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove layer directory %s: %w", diffID, err)
	}
	// A layer kept as its directory only is gone with it.
	if ll, ok := s.lazyRecord(diffID); ok && ll.Dir {
		if err := os.Remove(s.lazyPath(diffID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove layer directory %s: %w", diffID, err)
		}
	}
	return nil
}
