package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A layer directory is checked against its tree digests (checkLayerDir)
// once per epoch, not on every use: its layertrees record also holds the
// epoch in which it was last made or checked, and a directory whose record
// names the current epoch is handed out as it is. The epoch
// (layerchecks.epoch: the boot's id and a random part) is renewed when a
// crash may have touched the layer directories since it began: a new boot,
// or a kiln process of this root that died without cleaning up (its tmp/
// entries, swept by Open, or its snapshots, see DistrustLayerDirs). A
// directory changed by hand between clean runs is found by kiln cache
// verify, not by the next use.
//
// kiln does not force a layer directory's data to the disk when it makes
// one (as containerd's snapshotters, it leaves the write-back to the
// kernel: a whole-file-system sync made each commit wait for whatever any
// process had written). A power loss may then keep a directory's inodes
// and lose its data, which the metadata check cannot see. So the record of
// a directory names the boot that wrote it (Unsynced), and its first use
// in a later boot hashes its whole tree, read back from the disk, before
// the record forgets the boot. A crash of kiln alone, in the same boot,
// loses nothing of what it wrote (the page cache is the file system's
// truth): the metadata check suffices then.

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
	boot := s.boot
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

// currentEpoch returns the current epoch.
func (s *Store) currentEpoch() string {
	e, _ := s.epoch.Load().(string)
	return e
}

// DistrustLayerDirs starts a new epoch: every layer directory is checked
// again on its next use. kiln calls it when it sweeps what a crashed kiln
// process left under the root.
func (s *Store) DistrustLayerDirs() error { return s.loadEpoch(true) }
