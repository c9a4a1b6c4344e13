package topdir

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMark sets the flag on a directory of the test's file system and
// checks it with lsattr, the reference tool (e2fsprogs), besides Marked.
// A file system without the flag (tmpfs) skips, saying so.
func TestMark(t *testing.T) {
	dir := t.TempDir()
	if _, err := Marked(dir); errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("the file system of %s has no inode flags: %v", dir, err)
	}
	if ok, err := Marked(dir); err != nil || ok {
		t.Fatalf("a new directory: Marked = %v, %v; want false", ok, err)
	}
	if !Mark(dir) {
		t.Fatal("Mark: false")
	}
	if !Mark(dir) { // again: already marked
		t.Fatal("Mark of a marked directory: false")
	}
	if ok, err := Marked(dir); err != nil || !ok {
		t.Errorf("after Mark: Marked = %v, %v; want true", ok, err)
	}
	if lsattr, err := exec.LookPath("lsattr"); err == nil {
		out, err := exec.Command(lsattr, "-d", dir).Output()
		if err != nil {
			t.Fatal(err)
		}
		if attrs, _, _ := strings.Cut(string(out), " "); !strings.Contains(attrs, "T") {
			t.Errorf("lsattr -d %s: %q, want the T attribute", dir, out)
		}
	}
}

// TestMarkNotADirectory: a regular file, a symlink to a directory and a
// missing path are left alone.
func TestMarkNotADirectory(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(sub, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f, link, filepath.Join(dir, "missing")} {
		if Mark(p) {
			t.Errorf("Mark(%s): true, want false", p)
		}
	}
	if ok, _ := Marked(sub); ok {
		t.Errorf("Mark through a symlink marked its target %s", sub)
	}
}
