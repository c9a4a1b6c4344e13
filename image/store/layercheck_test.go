package store

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/image/layer"
)

// deadPid returns the pid of a process that has exited, as a crashed
// kiln's tmp/ entries name it (cache's tests have their own: the store is
// below the engine's test helpers).
func deadPid(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// TestLayerDirCheckedOncePerEpoch changes a layer directory (a file added)
// after it was made, and opens the root again: without a crash since, the
// directory is handed out unchecked (the cost this saves: a walk of the
// whole tree per use) and kiln cache verify's VerifyLayerDir still finds
// the change; after a crash (a dead process's tmp/ entry swept by Open, a
// crashed kiln's snapshots, DistrustLayerDirs) or in another boot (the
// epoch's boot id differs), the next use finds it and makes the directory
// again, with a warning.
func TestLayerDirCheckedOncePerEpoch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		between func(t *testing.T, s *Store)
		open    func(t *testing.T, s *Store)
		caught  bool
	}{
		{"no crash", func(t *testing.T, s *Store) {}, func(t *testing.T, s *Store) {}, false},
		{"dead process's tmp entry", func(t *testing.T, s *Store) {
			p := filepath.Join(s.tmpDir(), strconv.Itoa(deadPid(t))+"-left")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, s *Store) {}, true},
		{"DistrustLayerDirs", func(t *testing.T, s *Store) {}, func(t *testing.T, s *Store) {
			if err := s.DistrustLayerDirs(); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"another boot", anotherBoot, func(t *testing.T, s *Store) {}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			img, l := importedLayer(t, s)
			dirs, err := s.LayerDirs(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dirs[0], "evil"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			tc.between(t, s)
			s2, warnings := useAfterReopen(t, s, img, tc.open)
			id, _ := l.DiffID()
			_, evil := os.Lstat(filepath.Join(dirs[0], "evil"))
			caught := len(warnings) == 1 && strings.Contains(warnings[0], id.Hex) && os.IsNotExist(evil)
			if caught != tc.caught {
				t.Errorf("LayerDirs warned %q (evil still there: %v): caught = %v, want %v", warnings, evil == nil, caught, tc.caught)
			}
			verr := s2.VerifyLayerDir(ctx, id)
			if tc.caught && verr != nil {
				t.Errorf("VerifyLayerDir after the directory was made again: %v", verr)
			}
			if !tc.caught && verr == nil {
				t.Errorf("VerifyLayerDir of a changed directory that the epoch trusted: no error")
			}
		})
	}
}

// TestLayerDirUnsyncedCheckedInFull plays a power loss that kept a layer
// directory's inodes but not its data: kiln does not force a layer
// directory's data to the disk when it makes one (a whole-file-system
// sync made every commit wait for whatever any other process had
// written), so its record names the boot that wrote it, and the first use
// in a later boot hashes its whole tree instead of trusting its metadata
// digest. The test changes a file's content and then gives the record the
// metadata digest of the changed tree (what a crash that kept the inodes
// but lost the data blocks leaves: its metadata as recorded, its content
// not). A record whose directory was checked in full since, or a crash of
// kiln alone in the same boot (the page cache is the file system's truth
// then), costs only the metadata check.
func TestLayerDirUnsyncedCheckedInFull(t *testing.T) {
	const otherBoot = "00000000-0000-0000-0000-000000000000"
	for _, tc := range []struct {
		name     string
		unsynced string // the record's boot; "this" for this boot's
		epoch    func(t *testing.T, s *Store)
		caught   bool
	}{
		{"written in another boot, used in this one", otherBoot, anotherBoot, true},
		{"checked in full in another boot", "", anotherBoot, false},
		{"written in this boot, kiln crashed", "this", func(t *testing.T, s *Store) {
			if err := s.DistrustLayerDirs(); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			img, l := importedLayer(t, s)
			id, _ := l.DiffID()
			dirs, err := s.LayerDirs(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			rec, ok, err := s.readTree(id)
			if err != nil || !ok {
				t.Fatalf("no tree record: %v", err)
			}
			if rec.Unsynced != s.boot {
				t.Fatalf("the record of a directory just unpacked names boot %q, want this boot's %q", rec.Unsynced, s.boot)
			}
			flip(t, filepath.Join(dirs[0], "f"))
			meta, err := layer.DigestTree(ctx, dirs[0], false)
			if err != nil {
				t.Fatal(err)
			}
			rec.Meta = meta.Meta
			rec.Unsynced = tc.unsynced
			if tc.unsynced == "this" {
				rec.Unsynced = s.boot
			}
			b, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.treePath(id), b, 0o600); err != nil {
				t.Fatal(err)
			}
			s2, warnings := useAfterReopen(t, s, img, tc.epoch)
			got, err := os.ReadFile(filepath.Join(dirs[0], "f"))
			if err != nil {
				t.Fatal(err)
			}
			caught := len(warnings) == 1 && strings.Contains(warnings[0], id.Hex) && string(got) == "hello"
			if caught != tc.caught {
				t.Errorf("LayerDirs warned %q (file now %q): caught = %v, want %v", warnings, got, caught, tc.caught)
			}
			if !tc.caught {
				return
			}
			// Made again from the blob in this boot: its record names this
			// boot, so the next boot checks it in full once more.
			after, ok, err := s2.readTree(id)
			if err != nil || !ok || after.Unsynced != s.boot {
				t.Errorf("record after the directory was made again: %+v (ok %v, err %v), want it to name this boot", after, ok, err)
			}
		})
	}
}

// TestLayerDirUnsyncedClearedByFullCheck: a directory written in another
// boot that passes its full check has its data on the disk (it was read
// from there): its record no longer names a boot, and the next epoch
// checks only its metadata. A full check in the boot that wrote it (kiln
// cache verify) read the page cache, not the disk: the record still names
// the boot.
func TestLayerDirUnsyncedClearedByFullCheck(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img, l := importedLayer(t, s)
	id, _ := l.DiffID()
	if _, err := s.LayerDirs(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyLayerDir(ctx, id); err != nil {
		t.Fatal(err)
	}
	rec, _, err := s.readTree(id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Unsynced != s.boot {
		t.Fatalf("record after a full check in the boot that wrote the directory names boot %q, want %q", rec.Unsynced, s.boot)
	}
	rec.Unsynced = "00000000-0000-0000-0000-000000000000"
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(s.treePath(id), b, 0o600); err != nil {
		t.Fatal(err)
	}
	anotherBoot(t, s)
	s2, err := Open(ctx, s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.LayerDirs(ctx, img); err != nil {
		t.Fatal(err)
	}
	after, ok, err := s2.readTree(id)
	if err != nil || !ok || after.Unsynced != "" || after.Checked != s2.currentEpoch() || after.TreeDigests != rec.TreeDigests {
		t.Errorf("record after a full check in a later boot: %+v (ok %v, err %v); want the same digests, checked in %q, no boot",
			after, ok, err, s2.currentEpoch())
	}
}

// useAfterReopen opens s's root again, as the next kiln process does,
// calls before on that Store, asks it for img's layer directories and
// returns it with the warnings it gave.
func useAfterReopen(t *testing.T, s *Store, img v1.Image, before func(*testing.T, *Store)) (*Store, []string) {
	t.Helper()
	var warnings []string
	s2, err := Open(context.Background(), s.Root(), WithWarnings(func(m string) { warnings = append(warnings, m) }))
	if err != nil {
		t.Fatal(err)
	}
	before(t, s2)
	if _, err := s2.LayerDirs(context.Background(), img); err != nil {
		t.Fatalf("LayerDirs: %v", err)
	}
	return s2, warnings
}

// anotherBoot makes s's epoch one that began in another boot.
func anotherBoot(t *testing.T, s *Store) {
	t.Helper()
	if err := os.WriteFile(s.epochPath(), []byte("00000000-0000-0000-0000-000000000000 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
