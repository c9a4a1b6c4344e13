package enginetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/image/layer"
)

// SnapshotterSuite checks an engine.Snapshotter: the merged view of its
// parents, that writes reach only the snapshot, that parents plus its
// diff give exactly what a container saw, and its key management. It
// needs root (mounts). newSnapshotter returns an empty snapshotter.
func SnapshotterSuite(t *testing.T, newSnapshotter func(t *testing.T) engine.Snapshotter) {
	RequireRoot(t)
	t.Run("MergedView", func(t *testing.T) { testMergedView(t, newSnapshotter(t)) })
	t.Run("DiffReproducesChanges", func(t *testing.T) { testDiff(t, newSnapshotter(t)) })
	t.Run("Scratch", func(t *testing.T) { testScratch(t, newSnapshotter(t)) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, newSnapshotter(t)) })
}

func write(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// parents makes two layer directories in overlay form: a base, and a
// second layer that deletes, adds and makes a directory opaque.
func parents(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	l1, l2 := filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	write(t, filepath.Join(l1, "etc/conf"), "base\n", 0o644)
	write(t, filepath.Join(l1, "gone"), "deleted by l2\n", 0o644)
	write(t, filepath.Join(l1, "opaque/old"), "hidden by l2\n", 0o644)
	write(t, filepath.Join(l1, "keep/a"), "a\n", 0o600)
	write(t, filepath.Join(l1, "bin/tool"), "#!/bin/sh\n", 0o755)
	if err := os.Symlink("tool", filepath.Join(l1, "bin/link")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(l2, "opaque/new"), "only in l2\n", 0o644)
	if err := unix.Setxattr(filepath.Join(l2, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(l2, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(l2, "etc/added"), "l2\n", 0o640)
	return []string{l1, l2}
}

func testMergedView(t *testing.T, sn engine.Snapshotter) {
	ctx := context.Background()
	ps := parents(t)
	mounts, err := sn.Prepare(ctx, "merged", ps)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]Entry
	Mounted(t, mounts, func(root string) { got = Tree(t, root) })
	want := []string{"bin", "bin/link", "bin/tool", "etc", "etc/added", "etc/conf", "keep", "keep/a", "opaque", "opaque/new"}
	if diff := cmp.Diff(want, sortedKeys(got)); diff != "" {
		t.Errorf("merged view (-want +got):\n%s", diff)
	}
	if e := got["keep/a"]; e.Mode.Perm() != 0o600 {
		t.Errorf("keep/a mode %v, want 0600", e.Mode)
	}
	if e := got["bin/link"]; e.Link != "tool" {
		t.Errorf("bin/link -> %q, want tool", e.Link)
	}
}

func sortedKeys(m map[string]Entry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func testDiff(t *testing.T, sn engine.Snapshotter) {
	ctx := context.Background()
	ps := parents(t)
	before := map[string]map[string]Entry{}
	for _, p := range ps {
		before[p] = Tree(t, p)
	}
	mounts, err := sn.Prepare(ctx, "work", ps)
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]Entry
	Mounted(t, mounts, func(root string) {
		write(t, filepath.Join(root, "new/file"), "created\n", 0o644)
		write(t, filepath.Join(root, "etc/conf"), "modified\n", 0o644)
		must(t, os.Remove(filepath.Join(root, "keep/a")))
		must(t, os.RemoveAll(filepath.Join(root, "bin")))
		write(t, filepath.Join(root, "bin"), "a file where a directory was\n", 0o644)
		must(t, os.RemoveAll(filepath.Join(root, "opaque")))
		write(t, filepath.Join(root, "opaque/fresh"), "a new directory\n", 0o644)
		must(t, os.Chmod(filepath.Join(root, "etc/added"), 0o600))
		must(t, os.Link(filepath.Join(root, "new/file"), filepath.Join(root, "new/hardlink")))
		must(t, os.Symlink("../etc/conf", filepath.Join(root, "new/symlink")))
		must(t, os.Lchown(filepath.Join(root, "new/file"), 1000, 1000))
		must(t, unix.Setxattr(filepath.Join(root, "new/file"), "user.kiln", []byte("x"), 0))
		seen = Tree(t, root)
	})
	for _, p := range ps {
		if diff := cmp.Diff(before[p], Tree(t, p)); diff != "" {
			t.Errorf("parent %s changed (-before +after):\n%s", p, diff)
		}
	}
	var tar bytes.Buffer
	if err := sn.Diff(ctx, "work", &tar, engine.DiffOptions{}); err != nil {
		t.Fatal(err)
	}
	// Parents plus the diff, unpacked as a layer, must be what was seen.
	diffDir := filepath.Join(t.TempDir(), "diff")
	must(t, os.Mkdir(diffDir, 0o755))
	if err := layer.Extract(ctx, &tar, diffDir); err != nil {
		t.Fatal(err)
	}
	check, err := sn.Prepare(ctx, "check", append(ps, diffDir))
	if err != nil {
		t.Fatal(err)
	}
	Mounted(t, check, func(root string) {
		if diff := cmp.Diff(seen, Tree(t, root)); diff != "" {
			t.Errorf("parents + diff differ from what the container saw (-seen +got):\n%s", diff)
		}
	})
}

func testScratch(t *testing.T, sn engine.Snapshotter) {
	ctx := context.Background()
	mounts, err := sn.Prepare(ctx, "scratch", nil)
	if err != nil {
		t.Fatal(err)
	}
	Mounted(t, mounts, func(root string) {
		write(t, filepath.Join(root, "only"), "x", 0o644)
	})
	var tar bytes.Buffer
	if err := sn.Diff(ctx, "scratch", &tar, engine.DiffOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := layer.Extract(ctx, &tar, dir); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"only"}, sortedKeys(Tree(t, dir))); diff != "" {
		t.Errorf("diff of a scratch snapshot (-want +got):\n%s", diff)
	}
}

func testKeys(t *testing.T, sn engine.Snapshotter) {
	ctx := context.Background()
	ps := parents(t)
	if _, err := sn.Prepare(ctx, "a", ps); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "a", ps); !errors.Is(err, engine.ErrExists) {
		t.Errorf("Prepare of an existing key: %v, want ErrExists", err)
	}
	if _, err := sn.Prepare(ctx, "../escape", ps); err == nil {
		t.Error("Prepare of key ../escape: no error")
	}
	if _, err := sn.Mounts(ctx, "missing"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Mounts of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := sn.Prepare(ctx, "b", ps); err != nil {
		t.Fatal(err)
	}
	keys, err := sn.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, keys); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if err := sn.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, "a"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	keys, _ = sn.List(ctx)
	if diff := cmp.Diff([]string{"b"}, keys); diff != "" {
		t.Errorf("List after Remove (-want +got):\n%s", diff)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
