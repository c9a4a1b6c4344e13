package buildctx

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCopyTreeKeepOwner copies a tree whose files belong to other users,
// with and without KeepOwner.
func TestCopyTreeKeepOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: giving files to other users needs root")
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(src, "d", "l")); err != nil {
		t.Fatal(err)
	}
	for p, id := range map[string]int{".": 1003, "d": 1000, "d/f": 1001, "d/l": 1002} {
		if err := os.Lchown(filepath.Join(src, p), id, id+10); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		opts CopyOptions
		want map[string][2]int
	}{
		// The missing parent and the destination made for the tree get
		// UID:GID, as BuildKit makes them (not the tree's owner).
		{"keep", CopyOptions{KeepOwner: true, UID: 7, GID: 7}, map[string][2]int{
			"p": {7, 7}, "p/new": {7, 7}, "p/new/d": {1000, 1010}, "p/new/d/f": {1001, 1011}, "p/new/d/l": {1002, 1012}}},
		{"chown", CopyOptions{UID: 5, GID: 6}, map[string][2]int{
			"p": {5, 6}, "p/new": {5, 6}, "p/new/d": {5, 6}, "p/new/d/f": {5, 6}, "p/new/d/l": {5, 6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := CopyTree(context.Background(), src, "/", root, "/p/new/", tc.opts); err != nil {
				t.Fatal(err)
			}
			got := map[string][2]int{}
			for p := range tc.want {
				fi, err := os.Lstat(filepath.Join(root, p))
				if err != nil {
					t.Fatal(err)
				}
				st := fi.Sys().(*syscall.Stat_t)
				got[p] = [2]int{int(st.Uid), int(st.Gid)}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("owners mismatch (-want +got):\n%s", d)
			}
		})
	}
}
