package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestAutoRemembersTheProbe checks that Auto probes overlayfs once per
// snapshot directory, file system and boot: a probe makes (and removes) a
// directory in dir, which changes dir's modification time; a remembered
// one leaves it alone. A sweep keeps what was remembered; a record from
// another boot or file system is probed again.
func TestAutoRemembersTheProbe(t *testing.T) {
	enginetest.RequireRoot(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "snapshots")
	newOverlay := func() {
		t.Helper()
		if _, c, err := New(ctx, dir, Auto); err != nil || c.Driver != Overlayfs {
			t.Fatalf("New: %v, %v; want overlayfs", c, err)
		}
	}
	mtime := func() int64 {
		t.Helper()
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime().UnixNano()
	}
	newOverlay()
	probed := mtime()
	newOverlay()
	if _, err := Sweep(ctx, dir); err != nil {
		t.Fatal(err)
	}
	newOverlay()
	if got := mtime(); got != probed {
		t.Errorf("New probed overlayfs again in the same boot and file system (dir modified at %d, then %d)", probed, got)
	}
	for _, stale := range []string{"boot another\ndev 1\n", "", "garbage"} {
		if err := os.WriteFile(filepath.Join(dir, ProbeRecord), []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
		before := mtime()
		newOverlay()
		if mtime() == before {
			t.Errorf("record %q: New did not probe again", stale)
		}
	}
}
