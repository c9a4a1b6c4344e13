package layer

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// flatten applies the layer tars in order with go-containerregistry's
// mutate.Extract and describes the resulting tree.
func flatten(t *testing.T, layers ...[]byte) manifest {
	t.Helper()
	var ls []v1.Layer
	for _, b := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	return tarManifest(t, rc)
}

// change makes the changes of the diff tests under root, a merged view of
// a tree built from lowerFixture.
func change(t *testing.T, root string) {
	t.Helper()
	p := func(name string) string { return filepath.Join(root, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p("new.txt"), []byte("new"), 0o644))
	f, err := os.OpenFile(p("a/mod.txt"), os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteString(" and more")
	must(err)
	must(f.Close())
	must(os.Remove(p("a/b/deep.txt")))
	must(os.RemoveAll(p("del")))
	must(os.RemoveAll(p("repl")))
	must(os.WriteFile(p("repl"), []byte("now a file"), 0o644))
	must(os.RemoveAll(p("opq")))
	must(os.Mkdir(p("opq"), 0o755))
	must(os.WriteFile(p("opq/new"), nil, 0o644))
	must(os.Chmod(p("exec"), 0o700))
	must(os.Chown(p("owned"), 2000, 2000))
	must(os.Link(p("new.txt"), p("newlink")))
	must(os.Link(p("x.txt"), p("xlink")))
	must(os.Symlink("new.txt", p("newsym")))
	must(unix.Mkfifo(p("a/b/newfifo"), 0o600))
	must(unix.Mknod(p("zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
	must(unix.Lsetxattr(p("x.txt"), "user.x", []byte("2"), 0))
	must(unix.Lsetxattr(p("a/b/keep.txt"), "user.new", []byte("v"), 0))
	// Same size, same whole-second mtime: only the contents tell.
	must(os.WriteFile(p("same.txt"), []byte("SAME SIZE"), 0o644))
	setTime(t, p("same.txt"), time.Unix(1_600_000_000, 0))
}

func TestWriteOverlayDiff(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build(t, lower, lowerFixture())
	lowerTar := writeDir(t, lower)

	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			unix.Unmount(merged, unix.MNT_DETACH)
		}
	})
	change(t, merged)
	want := dirManifest(t, merged)
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatalf("unmount overlay: %v", err)
	}
	mounted = false

	var diff bytes.Buffer
	if err := WriteOverlayDiff(context.Background(), &diff, upper); err != nil {
		t.Fatalf("WriteOverlayDiff: %v", err)
	}
	if d := cmp.Diff(want, flatten(t, lowerTar, diff.Bytes())); d != "" {
		t.Errorf("lower tar + diff tar, flattened, against the overlay merged view (-want +got):\n%s", d)
	}

	// Extracted, the diff is the upperdir again, in overlay form.
	x := filepath.Join(base, "x")
	if err := Extract(context.Background(), bytes.NewReader(diff.Bytes()), x); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	wantUpper, gotUpper := dirManifest(t, upper), dirManifest(t, x)
	for _, m := range []manifest{wantUpper, gotUpper} {
		for name, e := range m {
			if e.Type == "char" && e.Dev == "0:0" {
				e.Mtime = time.Time{} // a whiteout's mtime is not kept
				m[name] = e
			}
		}
	}
	if d := cmp.Diff(wantUpper, gotUpper); d != "" {
		t.Errorf("extracted diff against the upperdir (-want +got):\n%s", d)
	}
	for _, name := range []string{"del", "a/b/deep.txt"} {
		if e := gotUpper[name]; e.Type != "char" || e.Dev != "0:0" {
			t.Errorf("extracted %s is %s %s, want a 0:0 char device (whiteout)", name, e.Type, e.Dev)
		}
	}
	if !gotUpper["opq"].Opaque {
		t.Errorf("extracted opq has no trusted.overlay.opaque=y")
	}
}

func TestWriteDiff(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	base := t.TempDir()
	src := filepath.Join(base, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	build(t, src, lowerFixture())
	lowerTar := writeDir(t, src)
	lower := filepath.Join(base, "lower")
	if err := Extract(ctx, bytes.NewReader(lowerTar), lower); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	work := filepath.Join(base, "work")
	if err := Merge(ctx, work, []string{lower}); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if d := cmp.Diff(dirManifest(t, src), dirManifest(t, work)); d != "" {
		t.Fatalf("merged copy of one layer (-want +got):\n%s", d)
	}

	var unchanged bytes.Buffer
	if err := WriteDiff(ctx, &unchanged, []string{lower}, work); err != nil {
		t.Fatalf("WriteDiff: %v", err)
	}
	if names := tarNames(t, unchanged.Bytes()); len(names) != 0 {
		t.Errorf("diff of an unchanged copy has entries %q, want none", names)
	}

	change(t, work)
	want := dirManifest(t, work)
	var diff bytes.Buffer
	if err := WriteDiff(ctx, &diff, []string{lower}, work); err != nil {
		t.Fatalf("WriteDiff: %v", err)
	}
	wantNames := []string{
		".wh.del", "a/", "a/b/", "a/b/.wh.deep.txt", "a/b/keep.txt", "a/b/newfifo", "a/mod.txt",
		"exec", "new.txt", "newlink", "newsym", "opq/", "opq/.wh.old", "opq/new", "owned",
		"repl", "same.txt", "x.txt", "xlink", "zero",
	}
	if d := cmp.Diff(wantNames, tarNames(t, diff.Bytes())); d != "" {
		t.Errorf("diff entries (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, flatten(t, lowerTar, diff.Bytes())); d != "" {
		t.Errorf("lower tar + diff tar, flattened, against the changed copy (-want +got):\n%s", d)
	}

	// Applied the overlay way: extracted as a layer and merged on the lower.
	top := filepath.Join(base, "top")
	if err := Extract(ctx, bytes.NewReader(diff.Bytes()), top); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	again := filepath.Join(base, "again")
	if err := Merge(ctx, again, []string{lower, top}); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if d := cmp.Diff(want, dirManifest(t, again)); d != "" {
		t.Errorf("lower and extracted diff merged, against the changed copy (-want +got):\n%s", d)
	}
}

// TestWriteDiffLayers checks the merged view of several lowers: whiteouts
// and opaque directories in a lower hide what is below them.
func TestWriteDiffLayers(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	base := t.TempDir()
	l1, l2, work := filepath.Join(base, "l1"), filepath.Join(base, "l2"), filepath.Join(base, "work")
	for _, d := range []string{l1, l2, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build(t, l1, []fixture{
		{name: "d", kind: "dir", mode: 0o755},
		{name: "d/old", kind: "file", data: "o", mode: 0o644},
		{name: "gone", kind: "file", data: "g", mode: 0o644},
		{name: "keep", kind: "file", data: "k", mode: 0o644},
	})
	build(t, l2, []fixture{
		{name: "d", kind: "dir", mode: 0o755},
		{name: "d/new", kind: "file", data: "n", mode: 0o644},
		{name: "gone", kind: "char", data: "0:0"},
	})
	if err := unix.Lsetxattr(filepath.Join(l2, "d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	lowers := []string{l1, l2}
	if err := Merge(ctx, work, lowers); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	// d/old and gone are not in the merged view: nothing to delete.
	if err := os.Remove(filepath.Join(work, "keep")); err != nil {
		t.Fatal(err)
	}
	var diff bytes.Buffer
	if err := WriteDiff(ctx, &diff, lowers, work); err != nil {
		t.Fatalf("WriteDiff: %v", err)
	}
	if d := cmp.Diff([]string{".wh.keep"}, tarNames(t, diff.Bytes())); d != "" {
		t.Errorf("diff entries (-want +got):\n%s", d)
	}
}
