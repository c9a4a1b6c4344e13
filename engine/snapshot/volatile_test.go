package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestOverlayVolatileRemount: an overlay snapshot is mounted volatile
// (where the kernel has it), whose unmount does not sync the upperdir's
// file system, and can be mounted again, as a debugger's kept snapshot
// is: overlayfs refuses a second mount of the upper/work pair of a
// volatile one while work/incompat/volatile is there.
func TestOverlayVolatileRemount(t *testing.T) {
	enginetest.RequireRoot(t)
	if !volatileOverlays() {
		t.Skip("the kernel's overlayfs has no volatile mounts (Linux 5.10+)")
	}
	ctx := context.Background()
	sn, _, err := New(ctx, t.TempDir(), Overlayfs)
	if err != nil {
		t.Fatal(err)
	}
	lower := t.TempDir()
	mounts, err := sn.Prepare(ctx, "k", []string{lower})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mounts[0].Options, "volatile") {
		t.Errorf("overlay options %v: not volatile", mounts[0].Options)
	}
	enginetest.Mounted(t, mounts, func(root string) {
		if err := os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	again, err := sn.Mounts(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	enginetest.Mounted(t, again, func(root string) {
		if b, err := os.ReadFile(filepath.Join(root, "f")); err != nil || string(b) != "x" {
			t.Errorf("the second mount reads f as %q, %v", b, err)
		}
	})
}
