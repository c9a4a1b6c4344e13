package store

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
		{"another boot", func(t *testing.T, s *Store) {
			if err := os.WriteFile(s.epochPath(), []byte("00000000-0000-0000-0000-000000000000 0\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, s *Store) {}, true},
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
			var warnings []string
			s2, err := Open(ctx, s.Root(), WithWarnings(func(m string) { warnings = append(warnings, m) }))
			if err != nil {
				t.Fatal(err)
			}
			tc.open(t, s2)
			if _, err := s2.LayerDirs(ctx, img); err != nil {
				t.Fatalf("LayerDirs: %v", err)
			}
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
