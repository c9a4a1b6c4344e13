package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func writeDir(t *testing.T, dir string, opts ...Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDir(context.Background(), &buf, dir, opts...); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	build(t, src, lowerFixture())
	// A socket is skipped.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(src, "a", "sock")}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	setTime(t, filepath.Join(src, "a"), baseTime)
	want := dirManifest(t, src)

	tarball := writeDir(t, src)
	if diff := cmp.Diff(want, tarManifest(t, bytes.NewReader(tarball))); diff != "" {
		t.Errorf("tar of %s (-want +got):\n%s", src, diff)
	}
	dst := filepath.Join(t.TempDir(), "new")
	if err := Extract(context.Background(), bytes.NewReader(tarball), dst); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if diff := cmp.Diff(want, dirManifest(t, dst)); diff != "" {
		t.Errorf("extracted tree (-want +got):\n%s", diff)
	}
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "a/file.txt"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(dst, "a/hard"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino {
		t.Errorf("a/hard and a/file.txt are different inodes after extraction, want one hardlinked inode")
	}
}

func TestWriteDirFormat(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	build(t, src, lowerFixture())
	tarball := writeDir(t, src)

	names := tarNames(t, tarball)
	want := []string{
		"a/", "a/b/", "a/b/deep.txt", "a/b/keep.txt", "a/file.txt", "a/hard", "a/mod.txt",
		"abs", "big.bin", "del/", "del/x", "del/y/", "del/y/z", "empty", "exec", "fifo", "link",
		"null", "opq/", "opq/old", "owned", "ping", "repl/", "repl/child", "same.txt", "sgid/",
		"tmp/", "x.txt",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("entry names (-want +got):\n%s", diff)
	}

	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uname != "" || hdr.Gname != "" || !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
			t.Errorf("%s: uname %q gname %q atime %v ctime %v, want all empty", hdr.Name, hdr.Uname, hdr.Gname, hdr.AccessTime, hdr.ChangeTime)
		}
		if hdr.Name == "same.txt" && hdr.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want USTAR for an entry with no PAX needs", hdr.Name, hdr.Format)
		}
		if hdr.Name == "a/hard" && (hdr.Typeflag != tar.TypeLink || hdr.Linkname != "a/file.txt") {
			t.Errorf("a/hard: type %q link %q, want a hardlink to a/file.txt", hdr.Typeflag, hdr.Linkname)
		}
	}
}

func TestWriteDirDeterministic(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	build(t, src, lowerFixture())
	first := writeDir(t, src)
	if second := writeDir(t, src); !bytes.Equal(first, second) {
		t.Fatalf("two tars of the same tree differ")
	}

	// A copy with other inodes, created in another order, gives the same bytes.
	other := t.TempDir()
	fixtures := lowerFixture()
	build(t, other, fixtures)
	if copied := writeDir(t, other); !bytes.Equal(first, copied) {
		t.Errorf("tars of two identical trees differ")
	}

	// With a source date epoch, newer mtimes are clamped.
	epoch := time.Unix(1_650_000_000, 0)
	clamped := writeDir(t, src, WithSourceDateEpoch(epoch))
	for _, f := range fixtures {
		// Every mtime after the epoch changes (same.txt is older).
		if f.kind != "hardlink" && f.name != "same.txt" {
			setTime(t, filepath.Join(other, f.name), time.Now())
		}
	}
	if touched := writeDir(t, other, WithSourceDateEpoch(epoch)); !bytes.Equal(clamped, touched) {
		t.Errorf("with a source date epoch, tars of trees that differ only in new mtimes differ: (-want +got)\n%s",
			cmp.Diff(tarManifest(t, bytes.NewReader(clamped)), tarManifest(t, bytes.NewReader(touched))))
	}
	if bytes.Equal(first, clamped) {
		t.Errorf("the source date epoch changed nothing")
	}
	m := tarManifest(t, bytes.NewReader(clamped))
	for name, e := range m {
		want := baseTime.Add(time.Duration(slices.IndexFunc(fixtures, func(f fixture) bool { return f.name == name })) * time.Second)
		if name == "same.txt" {
			want = time.Unix(1_600_000_000, 0)
		}
		if want.After(epoch) {
			want = epoch
		}
		if name != "a/hard" && !e.Mtime.Equal(want) {
			t.Errorf("%s: mtime %v, want %v", name, e.Mtime, want)
		}
	}
}

func TestWriteOverlayDiffOpaqueAndWhiteouts(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	build(t, upper, []fixture{
		{name: "-first", kind: "file", data: "1", mode: 0o644},
		{name: "d", kind: "dir", mode: 0o755},
		{name: "d/-new", kind: "file", data: "n", mode: 0o644},
		{name: "gone", kind: "char", data: "0:0"},
		{name: "zz", kind: "file", data: "z", mode: 0o644},
	})
	if err := unix.Lsetxattr(filepath.Join(upper, "d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(upper, "zz"), "trusted.overlay.origin", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteOverlayDiff(context.Background(), &buf, upper); err != nil {
		t.Fatalf("WriteOverlayDiff: %v", err)
	}
	want := []string{"-first", ".wh.gone", "d/", "d/.wh..wh..opq", "d/-new", "zz"}
	if diff := cmp.Diff(want, tarNames(t, buf.Bytes())); diff != "" {
		t.Errorf("entry names (-want +got):\n%s", diff)
	}
	if strings.Contains(buf.String(), "trusted.overlay") {
		t.Errorf("tar contains a trusted.overlay attribute")
	}
}

func TestWriteOverlayDiffRejectsRedirect(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	if err := os.Mkdir(filepath.Join(upper, "moved"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(upper, "moved"), "trusted.overlay.redirect", []byte("/orig"), 0); err != nil {
		t.Fatal(err)
	}
	err := WriteOverlayDiff(context.Background(), io.Discard, upper)
	if err == nil || !strings.Contains(err.Error(), "redirect_dir") {
		t.Errorf("WriteOverlayDiff of a redirected dir: error %v, want one about redirect_dir", err)
	}
}

func TestWriteCanceled(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteDir(ctx, io.Discard, src); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteDir with a canceled context: %v, want %v", err, context.Canceled)
	}
}
