package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A layer directory is checked against its tree digests (checkLayerDir)
// once per epoch, not on every use: layerchecks/<diffid hex> holds the
// epoch in which it was last made or checked, and a directory whose record
// names the current epoch is handed out as it is. The epoch
// (layerchecks.epoch: the boot's id and a random part) is renewed when a
// crash may have touched the layer directories since it began: a new boot,
// or a kiln process of this root that died without cleaning up (its tmp/
// entries, swept by Open, or its snapshots, see DistrustLayerDirs). A
// directory changed by hand between clean runs is found by kiln cache
// verify, not by the next use.

func (s *Store) checksDir() string { return filepath.Join(s.root, "layerchecks") }

func (s *Store) checkPath(diffID v1.Hash) string { return filepath.Join(s.checksDir(), diffID.Hex) }

func (s *Store) epochPath() string { return filepath.Join(s.root, "layerchecks.epoch") }

// bootID returns the kernel's id of this boot, or "" when it cannot be
// read (every Open then starts a new epoch).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// loadEpoch reads the current epoch, starting a new one when there is none,
// it began in another boot, or fresh says so.
func (s *Store) loadEpoch(fresh bool) error {
	boot := bootID()
	if !fresh && boot != "" {
		b, err := os.ReadFile(s.epochPath())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read layer check epoch: %w", err)
		}
		if id, _, ok := strings.Cut(string(b), " "); ok && id == boot {
			s.epoch.Store(string(b))
			return nil
		}
	}
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails on Linux
	e := boot + " " + hex.EncodeToString(r[:]) + "\n"
	if boot == "" {
		// Without a boot id, an epoch cannot be told from the next boot's:
		// this Store keeps its own, which no other Store shares.
		s.epoch.Store(e)
		return nil
	}
	if err := s.writeFileAtomic(s.epochPath(), []byte(e), 0o600); err != nil {
		return fmt.Errorf("start layer check epoch: %w", err)
	}
	s.epoch.Store(e)
	return nil
}

// DistrustLayerDirs starts a new epoch: every layer directory is checked
// again on its next use. kiln calls it when it sweeps what a crashed kiln
// process left under the root.
func (s *Store) DistrustLayerDirs() error { return s.loadEpoch(true) }

// checkedThisEpoch reports whether the layer directory of diffID was made
// or checked in the current epoch.
func (s *Store) checkedThisEpoch(diffID v1.Hash) bool {
	e, _ := s.epoch.Load().(string)
	if e == "" {
		return false
	}
	b, err := os.ReadFile(s.checkPath(diffID))
	return err == nil && bytes.Equal(b, []byte(e))
}

// noteChecked records that the layer directory of diffID was made or
// checked in the current epoch. The record needs no sync: a lost or torn
// one only makes the next use check the directory again, and a crash of
// the machine starts a new epoch anyway.
func (s *Store) noteChecked(diffID v1.Hash) error {
	e, _ := s.epoch.Load().(string)
	if e == "" {
		return nil
	}
	if err := os.MkdirAll(s.checksDir(), 0o700); err != nil {
		return fmt.Errorf("record layer check %s: %w", diffID, err)
	}
	tmp := s.tempName()
	if err := os.WriteFile(tmp, []byte(e), 0o600); err != nil {
		return fmt.Errorf("record layer check %s: %w", diffID, err)
	}
	if err := os.Rename(tmp, s.checkPath(diffID)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record layer check %s: %w", diffID, err)
	}
	return nil
}

// forgetChecked removes the check record of diffID's layer directory.
func (s *Store) forgetChecked(diffID v1.Hash) error {
	if err := os.Remove(s.checkPath(diffID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget layer check %s: %w", diffID, err)
	}
	return nil
}
