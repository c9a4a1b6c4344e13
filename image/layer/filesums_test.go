package layer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// sumsTree makes an upperdir of many files, among them ones bigger than
// the copy buffer (several chunks each), empty ones, a hard link, a
// symlink, an attribute, a whiteout and an opaque directory.
func sumsTree(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	for i := range 120 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		n := i * 41
		if i%30 == 7 {
			n = 3*bufferSize + i // several chunks, the last one short
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "d3", "f007"), filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d1/f001", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "d2", "f002"), "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "d1"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFileSums checks that a tar written WithFileSums is the same tar,
// that the sums make DigestTreeWith give DigestTree's digests without
// reading the files it has, and that a file changed since is read again.
func TestFileSums(t *testing.T) {
	ctx := context.Background()
	dir := sumsTree(t)
	var plain, summed bytes.Buffer
	if err := WriteOverlayDiff(ctx, &plain, dir); err != nil {
		t.Fatal(err)
	}
	sums := NewFileSums()
	if err := WriteOverlayDiff(ctx, &summed, dir, WithFileSums(sums)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Bytes(), summed.Bytes()) {
		t.Fatalf("the tar written with file sums differs (%d bytes, want %d)", summed.Len(), plain.Len())
	}
	// 119 non-empty files (f000 is empty); the hard link is one of them.
	if got := sums.Len(); got != 119 {
		t.Errorf("sums has %d files, want 119", got)
	}
	want, err := DigestTree(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DigestTreeWith(ctx, dir, TreeOptions{Files: sums})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("DigestTreeWith = %+v, DigestTree = %+v", got, want)
	}
	// A file the sums have is not read: with one of its sums falsified,
	// the tree digest changes.
	for ino, f := range sums.m {
		f.sum = [32]byte{}
		sums.m[ino] = f
		break
	}
	if got, err := DigestTreeWith(ctx, dir, TreeOptions{Files: sums}); err != nil || got.Tree == want.Tree {
		t.Errorf("DigestTreeWith with a sum changed = %v, %v: the sum was not used", got.Tree, err)
	}

	// A file rewritten since (same size, same mtime set back) has a new
	// change time: it is read again, and the digests are DigestTree's.
	p := filepath.Join(dir, "d3", "f007")
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	sums = NewFileSums()
	if err := WriteOverlayDiff(ctx, &bytes.Buffer{}, dir, WithFileSums(sums)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Repeat([]byte{'X'}, int(st.Size)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{st.Atim, st.Mtim}, 0); err != nil {
		t.Fatal(err)
	}
	want, err = DigestTree(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DigestTreeWith(ctx, dir, TreeOptions{Files: sums}); err != nil || got != want {
		t.Errorf("after a change: DigestTreeWith = %+v, %v; DigestTree = %+v", got, err, want)
	}
}
