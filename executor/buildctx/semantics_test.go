package buildctx

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Copy semantics that follow BuildKit's (issue 16); cmd/kiln's
// dockerfile_semantics_test.go builds them end to end and names the
// BuildKit source for each.

func TestUnixMode(t *testing.T) {
	for _, tc := range []struct {
		in   uint32
		want fs.FileMode
	}{
		{0o644, 0o644},
		{0o4755, 0o755 | fs.ModeSetuid},
		{0o2750, 0o750 | fs.ModeSetgid},
		{0o1777, 0o777 | fs.ModeSticky},
		{0o7000, fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky},
	} {
		if got := UnixMode(tc.in); got != tc.want {
			t.Errorf("UnixMode(%04o) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// statMode returns the st_mode permission and special bits of p.
func statMode(t *testing.T, p string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

// TestCopyModeDirs copies a tree with a setgid Mode: without ModeDirs only
// files get it; with it, the copied directories get it too and the made
// destination its permission bits.
func TestCopyModeDirs(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src, node{Name: "f", Data: "f"}, node{Name: "sub/g", Data: "g"})
	mode := UnixMode(0o2750)
	for _, tc := range []struct {
		modeDirs                   bool
		wantDst, wantSub, wantFile uint32
	}{
		{false, 0o755, 0o755, 0o2750},
		{true, 0o750, 0o2750, 0o2750},
	} {
		root := t.TempDir()
		if err := CopyTree(context.Background(), src, ".", root, "/dst", CopyOptions{Mode: &mode, ModeDirs: tc.modeDirs}); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]uint32{"dst": tc.wantDst, "dst/sub": tc.wantSub, "dst/f": tc.wantFile, "dst/sub/g": tc.wantFile} {
			if got := statMode(t, filepath.Join(root, p)); got != want {
				t.Errorf("ModeDirs %v: %s has mode %04o, want %04o", tc.modeDirs, p, got, want)
			}
		}
	}
}

// TestCopyHardLinks copies a tree holding a hard-link group: the copies are
// one group too, but two matches are copied apart (as BuildKit copies
// each source path with a copier of its own).
func TestCopyHardLinks(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src, node{Name: "a", Data: "shared"}, node{Name: "d/"})
	if err := os.Link(filepath.Join(src, "a"), filepath.Join(src, "d", "b")); err != nil {
		t.Fatal(err)
	}
	ino := func(p string) uint64 {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	root := t.TempDir()
	if err := CopyTree(context.Background(), src, ".", root, "/t/", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if ino(filepath.Join(root, "t/a")) != ino(filepath.Join(root, "t/d/b")) {
		t.Errorf("t/a and t/d/b are not one file: the hard link was not kept")
	}
	if err := CopyTree(context.Background(), src, "[ad]", root, "/m/", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if ino(filepath.Join(root, "m/a")) == ino(filepath.Join(root, "m/b")) {
		t.Errorf("m/a and m/b, of two matches, are one file")
	}
}

// TestEmptyWildcard: a wildcard that matches nothing is an error wrapping
// ErrNoMatch, and writes nothing; a missing plain name is not ErrNoMatch.
func TestEmptyWildcard(t *testing.T) {
	c := testContext(t)
	root := t.TempDir()
	err := c.Copy(context.Background(), "*.none", root, "/d/", CopyOptions{})
	if !errors.Is(err, ErrNoMatch) {
		t.Errorf("Copy(*.none): %v, want ErrNoMatch", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Copy(*.none) made its destination: %v", err)
	}
	if _, err := c.Digest(context.Background(), "src/*.none"); !errors.Is(err, ErrNoMatch) {
		t.Errorf("Digest(src/*.none): %v, want ErrNoMatch", err)
	}
	if err := c.Copy(context.Background(), "none", root, "/d/", CopyOptions{}); err == nil || errors.Is(err, ErrNoMatch) {
		t.Errorf("Copy(none): %v, want an error that is not ErrNoMatch", err)
	}
}

// TestDigestHardLinks: the digest of a tree changes when two of its files
// become hard links of each other (a copy then makes one file, not two).
func TestDigestHardLinks(t *testing.T) {
	digest := func(link bool) string {
		dir := t.TempDir()
		makeTree(t, dir, node{Name: "a", Data: "same"})
		if link {
			if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
				t.Fatal(err)
			}
		} else {
			makeTree(t, dir, node{Name: "b", Data: "same"})
		}
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Digest(context.Background(), ".")
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	if digest(true) == digest(false) {
		t.Errorf("a hard link and a copy of the same file digest alike")
	}
}
