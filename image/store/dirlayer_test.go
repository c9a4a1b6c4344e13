package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/image/layer"
)

// bigUpper makes, under parent, an overlayfs upperdir like a big step's:
// bigFiles files of 3 MiB of hex text, 300 small files in 3 directories, a hard
// link, a symlink, an attribute, a whiteout and an opaque directory, with
// fixed modes and times (some after sde, which clamps them), all seeded
// by seed. It needs root (the whiteout and the trusted.* attribute).
func bigUpper(t testing.TB, parent string, seed byte, bigFiles int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a whiteout (a 0/0 device) and a trusted.overlay.* attribute")
	}
	dir, err := os.MkdirTemp(parent, "upper-")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{seed})
	raw := make([]byte, 3<<19)
	for i := range bigFiles {
		_, _ = rng.Read(raw)
		writeFile644(t, filepath.Join(dir, fmt.Sprintf("big%d.hex", i)), []byte(hex.EncodeToString(raw)))
	}
	for i := range 300 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile644(t, p, bytes.Repeat([]byte{seed, byte(i)}, i*17))
	}
	for _, err := range []error{
		os.Link(filepath.Join(dir, "big1.hex"), filepath.Join(dir, "d2", "big1.link")),
		os.Symlink("../big0.hex", filepath.Join(dir, "d0", "sym")),
		unix.Lsetxattr(filepath.Join(dir, "d1", "f004"), "user.note", []byte("kept"), 0),
		unix.Mknod(filepath.Join(dir, "gone"), unix.S_IFCHR, 0),
		unix.Lsetxattr(filepath.Join(dir, "d2"), "trusted.overlay.opaque", []byte("y"), 0),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := len(paths) - 1; i >= 0; i-- { // children before their directory
		ts := unix.NsecToTimespec(time.Unix(1700000000+int64(i%5)*1000, int64(i)*1000).UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile644(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// sde clamps bigUpper's later times.
var sde = time.Unix(1700002500, 0)

// TestBigUpperGolden pins the diffID of a big multi-file upperdir's tar
// as a step's layer is staged (StageLayer of WriteOverlayDiff, with a
// source date epoch): testdata/bigupper.diffid, which kiln 86c4f47
// wrote; CommitLayerDir must give the same (TestCommitLayerDir).
func TestBigUpperGolden(t *testing.T) {
	want := bigUpperDiffID(t)
	if _, l := stageBigUpper(t); l.diffID != want {
		t.Fatalf("StageLayer diffID %s, want %s (testdata/bigupper.diffid)", l.diffID, want)
	}
}

// stageBigUpper stages bigUpper's tar (seed 1, 6 big files) in a new
// store, as kiln did before CommitLayerDir.
func stageBigUpper(t *testing.T) (*Store, *storeLayer) {
	t.Helper()
	ctx := context.Background()
	s := newStore(t)
	l, err := s.StageLayer(ctx, func(w io.Writer) error {
		return layer.WriteOverlayDiff(ctx, w, bigUpper(t, t.TempDir(), 1, 6), layer.WithSourceDateEpoch(sde))
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, l.(*storeLayer)
}

func bigUpperDiffID(t *testing.T) v1.Hash {
	t.Helper()
	golden, err := os.ReadFile(filepath.Join("testdata", "bigupper.diffid"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := v1.NewHash(strings.TrimSpace(string(golden)))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestCommitLayerDir: the layer CommitLayerDir makes of a big multi-file
// upperdir has the diffID of TestBigUpperGolden, the one StageLayer
// gives its tar, and the tar's size; its tree digests are DigestTree's;
// the tar is not written, yet reading the layer (its blob, an image of it
// read back, its gzip compression) gives the tar; and an image of it has
// the digest of the same image made with StageLayer.
func TestCommitLayerDir(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	want := bigUpperDiffID(t)
	staged, sl := stageBigUpper(t)
	raw, err := os.ReadFile(staged.BlobPath(want))
	if err != nil {
		t.Fatal(err)
	}
	tarBytes := bytes.NewBuffer(raw)

	upper := bigUpper(t, s.tmpDir(), 1, 6)
	l, err := s.CommitLayerDir(ctx, upper, &sde, layer.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	diffID, _ := l.DiffID()
	digest, _ := l.Digest()
	size, _ := l.Size()
	mt, _ := l.MediaType()
	if diffID != want || digest != want || size != int64(tarBytes.Len()) || mt != types.OCIUncompressedLayer {
		t.Fatalf("CommitLayerDir layer: diffID %s, digest %s, size %d, media type %s; want %s, %s, %d, %s",
			diffID, digest, size, mt, want, want, tarBytes.Len(), types.OCIUncompressedLayer)
	}
	if _, err := os.Stat(s.BlobPath(diffID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the layer's tar was written as a blob (stat: %v)", err)
	}
	if !s.IsLazy(diffID) {
		t.Error("the layer is not lazy")
	}
	if _, err := os.Stat(upper); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the upperdir is still there (stat: %v): it should have become the layer directory", err)
	}
	rec, ok, err := s.readTree(diffID)
	if err != nil || !ok {
		t.Fatalf("no tree record: %v", err)
	}
	tree, err := layer.DigestTree(ctx, s.LayerPath(diffID), true)
	if err != nil {
		t.Fatal(err)
	}
	if rec.TreeDigests != tree || rec.Checked != s.currentEpoch() || rec.Unsynced != s.boot {
		t.Errorf("tree record %+v, want %+v checked in %q, written in boot %q", rec, tree, s.currentEpoch(), s.boot)
	}

	readAll := func(what string, open func() (io.ReadCloser, error)) []byte {
		t.Helper()
		rc, err := open()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return b
	}
	if b := readAll("Uncompressed", l.Uncompressed); !bytes.Equal(b, tarBytes.Bytes()) {
		t.Errorf("the layer's Uncompressed is not its tar (%d bytes, want %d)", len(b), tarBytes.Len())
	}

	// An image of it, kept and read back (from another Store of the
	// root), has the digest of the staged one, and reads the tar.
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	simg, err := mutate.AppendLayers(empty.Image, sl)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Tag(ctx, img, "big:latest")
	if err != nil {
		t.Fatal(err)
	}
	if sid, _ := simg.Digest(); sid != id {
		t.Errorf("image digest %s, want %s (the staged layer's image)", id, sid)
	}
	s2, err := Open(ctx, s.Root())
	if err != nil {
		t.Fatal(err)
	}
	back, err := s2.Image(ctx, "big:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	bl, err := back.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll("read back", bl[0].Compressed); !bytes.Equal(b, tarBytes.Bytes()) {
		t.Errorf("the image's layer read back is not its tar (%d bytes, want %d)", len(b), tarBytes.Len())
	}
	gz, err := s2.Compress(ctx, bl[0], Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := gz.DiffID(); d != want {
		t.Errorf("gzip layer diffID %s, want %s", d, want)
	}
	if b := readAll("gzip", gz.Uncompressed); !bytes.Equal(b, tarBytes.Bytes()) {
		t.Errorf("the gzip layer does not hold the tar")
	}

	// The same layer again: the store has it, and the new upperdir is
	// left alone.
	again := bigUpper(t, s.tmpDir(), 1, 6)
	if l2, err := s.CommitLayerDir(ctx, again, &sde, layer.TreeOptions{}); err != nil {
		t.Fatal(err)
	} else if d, _ := l2.DiffID(); d != want {
		t.Errorf("second commit diffID %s, want %s", d, want)
	}
	if _, err := os.Stat(again); err != nil {
		t.Errorf("the second upperdir was taken: %v", err)
	}
}

// TestCommitLayerDirTampered: a layer kept as its directory whose
// directory was changed after the commit (same sizes, times set back) is
// found by VerifyLayerDir (kiln cache verify), and reading it fails with
// a *CorruptBlobError instead of giving another tar.
func TestCommitLayerDirTampered(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	l, err := s.CommitLayerDir(ctx, bigUpper(t, s.tmpDir(), 2, 6), nil, layer.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	diffID, _ := l.DiffID()
	if err := s.VerifyLayerDir(ctx, diffID); err != nil {
		t.Fatalf("VerifyLayerDir of the committed layer: %v", err)
	}
	p := filepath.Join(s.LayerPath(diffID), "big3.hex")
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tampered"), 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{st.Atim, st.Mtim}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyLayerDir(ctx, diffID); !errors.Is(err, ErrLayerDirChanged) {
		t.Errorf("VerifyLayerDir of a tampered layer directory: %v, want ErrLayerDirChanged", err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	var ce *CorruptBlobError
	if !errors.As(err, &ce) {
		t.Errorf("reading a tampered layer: %v, want a CorruptBlobError", err)
	}
	// Removed (kiln cache verify --repair), the layer is gone: not lazy.
	if err := s.RemoveLayerDir(diffID); err != nil {
		t.Fatal(err)
	}
	if s.IsLazy(diffID) {
		t.Error("a layer whose directory was removed is still lazy")
	}
}

// BenchmarkCommitLayer commits a ~100 MB upperdir (bigUpper with 32 big
// files, like half of big200m's layer) as a step does:
// stage+adopt is the tar written as a blob (StageLayer) and the directory
// adopted with its tree hashed again (AdoptLayerDir); dir is
// CommitLayerDir. Each run gets a new upperdir, written back to the disk
// (not timed).
func BenchmarkCommitLayer(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"stage+adopt", "dir"} {
		b.Run(mode, func(b *testing.B) {
			s, err := Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				upper := bigUpper(b, s.tmpDir(), byte(i), 32)
				b.SetBytes(dirBytes(b, upper))
				syncFS(b, upper)
				b.StartTimer()
				switch mode {
				case "stage+adopt":
					l, err := s.StageLayer(ctx, func(w io.Writer) error {
						return layer.WriteOverlayDiff(ctx, w, upper, layer.WithSourceDateEpoch(sde))
					})
					if err != nil {
						b.Fatal(err)
					}
					d, _ := l.DiffID()
					if _, err := s.AdoptLayerDir(ctx, d, upper); err != nil {
						b.Fatal(err)
					}
				case "dir":
					if _, err := s.CommitLayerDir(ctx, upper, &sde, layer.TreeOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// syncFS writes back the file system of dir, as unmounting a step's
// overlay does with its upperdir's before kiln commits it, so that no
// writeback of the new files runs during the commit.
func syncFS(t testing.TB, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		t.Fatal(err)
	}
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t testing.TB, dir string) int64 {
	var n int64
	if err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		fi, err := e.Info()
		n += fi.Size()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCollectDirLayer: a layer kept as its directory is kept by a
// collection while a reference lists it, and once nothing does, its
// directory and its lazy record go.
func TestCollectDirLayer(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	l, err := s.CommitLayerDir(ctx, bigUpper(t, s.tmpDir(), 3, 2), nil, layer.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.DiffID()
	if err := s.Ref(ctx, "cache/k", []v1.Hash{d}, []v1.Hash{d}); err != nil {
		t.Fatal(err)
	}
	collect := func() {
		t.Helper()
		im, err := s.readIndex()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.collect(ctx, im, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	collect()
	if !s.IsLazy(d) {
		t.Fatal("a collection removed a referenced layer kept as its directory")
	}
	if err := s.Unref(ctx, "cache/k"); err != nil {
		t.Fatal(err)
	}
	collect()
	if _, err := os.Stat(s.LayerPath(d)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the unreferenced layer directory is still there (stat: %v)", err)
	}
	if _, err := os.Stat(s.lazyPath(d)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lazy record of a collected layer directory is still there (stat: %v)", err)
	}
}

// TestCommitLayerDirConcurrent: commits of one layer at once (as a build
// for several platforms makes them) all succeed, and the layer reads
// back as its tar.
func TestCommitLayerDirConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	uppers := make([]string, 4)
	for i := range uppers {
		uppers[i] = bigUpper(t, s.tmpDir(), 4, 2)
	}
	var raw bytes.Buffer
	if err := layer.WriteOverlayDiff(ctx, &raw, uppers[0], layer.WithSourceDateEpoch(sde)); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(uppers))
	ids := make([]v1.Hash, len(uppers))
	var wg sync.WaitGroup
	for i, u := range uppers {
		wg.Go(func() {
			l, err := s.CommitLayerDir(ctx, u, &sde, layer.TreeOptions{})
			if err == nil {
				ids[i], err = l.DiffID()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || ids[i] != ids[0] {
			t.Errorf("commit %d: %s, %v (commit 0: %s)", i, ids[i], err, ids[0])
		}
	}
	if got := readLayerTar(t, s, ids[0]); !bytes.Equal(got, raw.Bytes()) {
		t.Errorf("the layer reads back as %d bytes, not its tar (%d)", len(got), raw.Len())
	}
}

// TestCommitLayerDirLeftover: a layer directory that a crash left
// without its lazy record is taken by the next commit of the layer when
// it is the layer, and replaced when it is not.
func TestCommitLayerDirLeftover(t *testing.T) {
	ctx := context.Background()
	for _, changed := range []bool{false, true} {
		t.Run(fmt.Sprintf("changed=%v", changed), func(t *testing.T) {
			s := newStore(t)
			l, err := s.CommitLayerDir(ctx, bigUpper(t, s.tmpDir(), 5, 2), nil, layer.TreeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := l.DiffID()
			want := readLayerTar(t, s, d)
			if err := os.Remove(s.lazyPath(d)); err != nil {
				t.Fatal(err)
			}
			if changed {
				writeFile644(t, filepath.Join(s.LayerPath(d), "d0", "f000"), []byte("left by a crash"))
			}
			upper := bigUpper(t, s.tmpDir(), 5, 2)
			if l2, err := s.CommitLayerDir(ctx, upper, nil, layer.TreeOptions{}); err != nil {
				t.Fatal(err)
			} else if d2, _ := l2.DiffID(); d2 != d {
				t.Fatalf("second commit: diffID %s, want %s", d2, d)
			}
			if _, err := os.Stat(upper); errors.Is(err, fs.ErrNotExist) != changed {
				t.Errorf("the new upperdir was taken: %v, want %v (stat: %v)", !changed, changed, err)
			}
			if got := readLayerTar(t, s, d); !bytes.Equal(got, want) {
				t.Errorf("the layer reads back as %d bytes, not its tar (%d)", len(got), len(want))
			}
			if err := s.VerifyLayerDir(ctx, d); err != nil {
				t.Errorf("VerifyLayerDir: %v", err)
			}
		})
	}
}

// readLayerTar reads the layer diffID of s (an uncompressed blob).
func readLayerTar(t *testing.T, s *Store, diffID v1.Hash) []byte {
	t.Helper()
	if !s.IsLazy(diffID) {
		t.Fatalf("layer %s is not kept as its directory", diffID)
	}
	rc, err := s.BlobLayer(v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: diffID, Size: -1}, diffID).Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
