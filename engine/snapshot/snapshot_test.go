package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/internal/owner"
	"github.com/kiln-build/kiln/internal/topdir"
)

func TestOverlay(t *testing.T) {
	enginetest.SnapshotterSuite(t, func(t *testing.T) engine.Snapshotter {
		sn, c, err := New(context.Background(), t.TempDir(), Overlayfs)
		if err != nil || c.Driver != Overlayfs {
			t.Fatalf("New(overlayfs) = %v, %v", c, err)
		}
		return sn
	})
}

func TestCopy(t *testing.T) {
	enginetest.SnapshotterSuite(t, func(t *testing.T) engine.Snapshotter {
		sn, c, err := New(context.Background(), t.TempDir(), Copy)
		if err != nil || c.Driver != Copy {
			t.Fatalf("New(copy) = %v, %v", c, err)
		}
		return sn
	})
}

func TestAutoPicksOverlayWhereItMounts(t *testing.T) {
	enginetest.RequireRoot(t)
	_, c, err := New(context.Background(), t.TempDir(), Auto)
	if err != nil {
		t.Fatal(err)
	}
	if c.Driver != Overlayfs {
		t.Fatalf("auto chose %s (%s) on a filesystem where overlayfs mounts", c.Driver, c.Reason)
	}
}

func TestAutoFallsBackToCopy(t *testing.T) {
	enginetest.RequireRoot(t)
	// overlayfs cannot use an overlayfs upperdir: put the snapshot
	// directory on an overlay mount and auto must pick copy, with a reason.
	base := t.TempDir()
	for _, d := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mounts := []engine.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(base, "l"), "upperdir=" + filepath.Join(base, "u"), "workdir=" + filepath.Join(base, "w")}}}
	enginetest.Mounted(t, mounts, func(root string) {
		_, c, err := New(context.Background(), filepath.Join(root, "snapshots"), Auto)
		if err != nil {
			t.Fatal(err)
		}
		if c.Driver != Copy || c.Reason == "" {
			t.Errorf("auto on overlayfs chose %s (reason %q), want copy with a reason", c.Driver, c.Reason)
		}
	})
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	sn, _, err := New(context.Background(), dir, Copy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(context.Background(), "mine", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(context.Background(), "crashed", nil); err != nil {
		t.Fatal(err)
	}
	dead := owner.Owner{Pid: 1 << 30, Start: 1}
	if err := dead.Write(filepath.Join(dir, "crashed", "owner")); err != nil {
		t.Fatal(err)
	}
	swept, err := Sweep(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || swept[0] != "crashed" {
		t.Fatalf("Sweep removed %v, want [crashed]", swept)
	}
	keys, _ := sn.List(context.Background())
	if len(keys) != 1 || keys[0] != "mine" {
		t.Fatalf("after Sweep: %v, want [mine]", keys)
	}
}

func TestParseDriver(t *testing.T) {
	for in, want := range map[string]Driver{"": Auto, "auto": Auto, "overlayfs": Overlayfs, "copy": Copy} {
		if got, err := ParseDriver(in); err != nil || got != want {
			t.Errorf("ParseDriver(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseDriver("vfs"); err == nil {
		t.Error("ParseDriver(vfs): no error")
	}
}

// TestNewMarksTopDir: a snapshotter's directory holds one unrelated tree
// per snapshot; New marks it as a top of directory hierarchies (chattr
// +T), so that ext4 spreads the snapshots over block groups (see package
// topdir).
func TestNewMarksTopDir(t *testing.T) {
	for _, d := range []Driver{Overlayfs, Copy} {
		dir := filepath.Join(t.TempDir(), "snapshots")
		if _, _, err := New(context.Background(), dir, d); err != nil {
			t.Fatal(err)
		}
		ok, err := topdir.Marked(dir)
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("the file system of %s has no inode flags: %v", dir, err)
		}
		if err != nil || !ok {
			t.Errorf("driver %v: %s marked %v, %v; want chattr +T", d, dir, ok, err)
		}
	}
}
