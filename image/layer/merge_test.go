package layer

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestMerge(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	l1, l2, l3 := filepath.Join(base, "l1"), filepath.Join(base, "l2"), filepath.Join(base, "l3")
	for _, d := range []string{l1, l2, l3} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build(t, l1, []fixture{
		{name: "a", kind: "dir", mode: 0o755, xattrs: map[string]string{"user.v": "1"}},
		{name: "a/x", kind: "file", data: "x", mode: 0o644},
		{name: "a/y", kind: "file", data: "y", mode: 0o644},
		{name: "b", kind: "dir", mode: 0o755},
		{name: "b/old", kind: "file", data: "old", mode: 0o644},
		{name: "b/sub", kind: "dir", mode: 0o755},
		{name: "b/sub/deep", kind: "file", data: "deep", mode: 0o644},
		{name: "c", kind: "file", data: "c was a file", mode: 0o644},
		{name: "d", kind: "dir", mode: 0o755},
		{name: "d/e", kind: "file", data: "e", mode: 0o644},
		{name: "gone", kind: "dir", mode: 0o755},
		{name: "gone/f", kind: "file", data: "f", mode: 0o644},
		{name: "keep", kind: "file", data: "keep", mode: 0o600, uid: 1000},
		{name: "s", kind: "symlink", data: "keep"},
	})
	build(t, l2, []fixture{
		{name: "a", kind: "dir", mode: 0o700, xattrs: map[string]string{"user.w": "2"}},
		{name: "a/x", kind: "char", data: "0:0"},
		{name: "a/z", kind: "file", data: "z", mode: 0o644},
		{name: "b", kind: "dir", mode: 0o755},
		{name: "b/new", kind: "file", data: "new", mode: 0o644},
		{name: "c", kind: "dir", mode: 0o755},
		{name: "c/inner", kind: "file", data: "inner", mode: 0o644},
		{name: "d", kind: "file", data: "d is a file now", mode: 0o644},
		{name: "gone", kind: "char", data: "0:0"},
		{name: "h1", kind: "file", data: "linked", mode: 0o644},
		{name: "h2", kind: "hardlink", data: "h1"},
		{name: "p", kind: "fifo", mode: 0o644},
		{name: "wo1", kind: "char", data: "0:0"},
	})
	// Overlayfs shares one whiteout inode between whiteouts.
	if err := os.Link(filepath.Join(l2, "wo1"), filepath.Join(l2, "wo2")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(l2, "b"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	build(t, l3, []fixture{
		{name: "gone", kind: "dir", mode: 0o755},
		{name: "gone/again", kind: "file", data: "again", mode: 0o644},
		{name: "s", kind: "char", data: "0:0"},
	})
	lowers := []string{l1, l2, l3}

	// The oracle: overlayfs itself, read-only over the same lowers.
	merged := filepath.Join(base, "merged")
	if err := os.Mkdir(merged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+l3+":"+l2+":"+l1); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	want := dirManifest(t, merged)
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatalf("unmount overlay: %v", err)
	}

	dst := filepath.Join(base, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Merge(context.Background(), dst, lowers); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	got := dirManifest(t, dst)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("merged tree against the overlayfs view (-want +got):\n%s", d)
	}
	// Spot checks, should overlayfs itself change.
	for name, present := range map[string]bool{
		"a/x": false, "a/y": true, "a/z": true, "b/old": false, "b/sub": false, "b/new": true,
		"c/inner": true, "d/e": false, "gone/f": false, "gone/again": true, "s": false,
		"wo1": false, "wo2": false,
	} {
		if _, ok := got[name]; ok != present {
			t.Errorf("%s present: %v, want %v", name, ok, present)
		}
	}
	if x := got["a"].Xattrs; !cmp.Equal(x, map[string]string{"user.w": "2"}) {
		t.Errorf("a has xattrs %v, want only those of the top layer", x)
	}
	var h1, h2 unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "h1"), &h1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(dst, "h2"), &h2); err != nil {
		t.Fatal(err)
	}
	if h1.Ino != h2.Ino {
		t.Errorf("h1 and h2 are not one hardlinked inode after Merge")
	}
}
