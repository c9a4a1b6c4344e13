package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/topdir"
)

// requireRoot skips tests that unpack layers: extraction sets ownership and
// makes device nodes, which needs root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking a layer sets file ownership and makes whiteout devices")
	}
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Before t.TempDir removes the root: no compression Precompress
	// started may write into it then.
	t.Cleanup(s.Close)
	return s
}

// writeTree makes files (name → content; a name ending in "/" is a directory)
// under a new directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, content := range files {
		p := filepath.Join(dir, n)
		if strings.HasSuffix(n, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarOf returns a tar of files (sorted by name, regular files 0644).
func tarOf(t testing.TB, files map[string]string, mtime time.Time) []byte {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: mtime}
		if strings.HasSuffix(n, "/") {
			h = &tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: 0o755, ModTime: mtime}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func TestImportDeterministic(t *testing.T) {
	ctx := context.Background()
	helloTar := tarOf(t, map[string]string{"etc/": "", "etc/hello": "hello\n"}, time.Now())
	tests := []struct {
		name     string
		a, b     func(t *testing.T) string
		optsA    ImportOptions
		optsB    ImportOptions
		wantSame bool
	}{
		{
			name:     "same dir twice",
			a:        func(t *testing.T) string { return writeTree(t, map[string]string{"hello": "hi\n", "d/": ""}) },
			b:        func(t *testing.T) string { return writeTree(t, map[string]string{"hello": "hi\n", "d/": ""}) },
			optsA:    ImportOptions{Created: epoch},
			optsB:    ImportOptions{Created: epoch},
			wantSame: true,
		},
		{
			name: "different content",
			a:    func(t *testing.T) string { return writeTree(t, map[string]string{"hello": "hi\n"}) },
			b:    func(t *testing.T) string { return writeTree(t, map[string]string{"hello": "bye\n"}) },
		},
		{
			name:  "different config",
			a:     func(t *testing.T) string { return writeTree(t, map[string]string{"hello": "hi\n"}) },
			b:     func(t *testing.T) string { return writeTree(t, map[string]string{"hello": "hi\n"}) },
			optsB: ImportOptions{Config: v1.Config{Cmd: []string{"/bin/sh"}}},
		},
		{
			name:     "plain and gzip tar of later files, clamped",
			a:        func(t *testing.T) string { return writeFile(t, helloTar) },
			b:        func(t *testing.T) string { return writeFile(t, gzipOf(t, helloTar)) },
			optsA:    ImportOptions{Created: epoch},
			optsB:    ImportOptions{Created: epoch},
			wantSame: true,
		},
		{
			name: "tar then the same tar one second later",
			a:    func(t *testing.T) string { return writeFile(t, helloTar) },
			b: func(t *testing.T) string {
				return writeFile(t, tarOf(t, map[string]string{"etc/": "", "etc/hello": "hello\n"}, time.Now().Add(time.Second)))
			},
			optsA:    ImportOptions{Created: epoch},
			optsB:    ImportOptions{Created: epoch},
			wantSame: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			a, err := s.Import(ctx, tc.a(t), "a", tc.optsA)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Import(ctx, tc.b(t), "b", tc.optsB)
			if err != nil {
				t.Fatal(err)
			}
			if got := a == b; got != tc.wantSame {
				t.Errorf("digests %s and %s: same = %v, want %v", a, b, got, tc.wantSame)
			}
		})
	}
}

func TestImportConfig(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	cfg := v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}, Entrypoint: []string{"/init"}, WorkingDir: "/w", User: "1:1"}
	if _, err := s.Import(ctx, writeTree(t, map[string]string{"hello": "hi\n"}), "cfg:1", ImportOptions{Created: epoch, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(ctx, "cfg:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "kiln import"}}, cf.History); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if cf.OS != "linux" || !cf.Created.Equal(epoch) {
		t.Errorf("os %q, created %v; want linux, %v", cf.OS, cf.Created, epoch)
	}
	for _, get := range []func() (types.MediaType, error){img.MediaType, func() (types.MediaType, error) {
		m, err := img.Manifest()
		if err != nil {
			return "", err
		}
		return m.Config.MediaType, nil
	}} {
		mt, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if mt != types.OCIManifestSchema1 && mt != types.OCIConfigJSON {
			t.Errorf("media type %s, want OCI", mt)
		}
	}
}

func TestImportTarNormalised(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	later := epoch.Add(time.Hour)
	earlier := epoch.Add(-time.Hour)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: later},
		{Typeflag: tar.TypeDir, Name: "./etc", Mode: 0o755, ModTime: later, Uname: "root", Format: tar.FormatPAX, AccessTime: later},
		{Typeflag: tar.TypeReg, Name: "/etc/old", Mode: 0o600, Uid: 7, ModTime: earlier, PAXRecords: map[string]string{"SCHILY.xattr.user.x": "y"}},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, writeFile(t, buf.Bytes()), "n", ImportOptions{Created: epoch}); err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	type entry struct {
		Name    string
		Uid     int
		Uname   string
		ModTime time.Time
		Xattr   string
	}
	var got []entry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, entry{h.Name, h.Uid, h.Uname, h.ModTime.UTC(), h.PAXRecords["SCHILY.xattr.user.x"]})
	}
	want := []entry{
		{Name: "etc/", ModTime: epoch},
		{Name: "etc/old", Uid: 7, ModTime: earlier, Xattr: "y"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestImageListRemove(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	created := map[string]time.Time{"busybox:latest": epoch, "127.0.0.1:5000/app:1": epoch.Add(time.Hour)}
	digests := map[string]v1.Hash{}
	for i, n := range []string{"busybox", "127.0.0.1:5000/app:1"} {
		full, _ := ParseTag(n)
		d, err := s.Import(ctx, writeTree(t, map[string]string{"f": strconv.Itoa(i)}), n, ImportOptions{Created: created[full]})
		if err != nil {
			t.Fatal(err)
		}
		digests[full] = d
	}
	bb := digests["busybox:latest"]

	// List, with sizes from the blob files.
	var want []Summary
	for _, full := range []string{"127.0.0.1:5000/app:1", "busybox:latest"} {
		d := digests[full]
		img, err := s.Image(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		size := fileSize(t, s, d)
		size += fileSize(t, s, m.Config.Digest)
		for _, l := range m.Layers {
			size += fileSize(t, s, l.Digest)
		}
		want = append(want, Summary{Name: full, Digest: d, Size: size, Created: created[full]})
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	// Image, by name and by digest.
	lookups := []struct {
		name    string
		want    v1.Hash
		wantErr error  // errors.Is
		errText string // or contains
	}{
		{name: "busybox", want: bb},
		{name: "busybox:latest", want: bb},
		{name: bb.String(), want: bb},
		{name: "sha256:" + bb.Hex[:12], want: bb},
		{name: "busybox@" + bb.String(), want: bb},
		{name: "127.0.0.1:5000/app:1", want: digests["127.0.0.1:5000/app:1"]},
		{name: "127.0.0.1:5000/app", wantErr: ErrNotFound},
		{name: "busybox:1", wantErr: ErrNotFound},
		{name: "other@" + bb.String(), wantErr: ErrNotFound},
		{name: "sha256:" + strings.Repeat("0", 64), wantErr: ErrNotFound},
		{name: "sha256:" + bb.Hex[:11], errText: "invalid image digest"},
		{name: "BusyBox", errText: "invalid image name"},
		{name: "", errText: "invalid image name"},
	}
	for _, tc := range lookups {
		t.Run("Image "+tc.name, func(t *testing.T) {
			img, err := s.Image(ctx, tc.name)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errText)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if got, _ := img.Digest(); got != tc.want {
				t.Errorf("digest %s, want %s", got, tc.want)
			}
		})
	}

	// Remove, and garbage collection after GCGrace.
	bbImg, err := s.Image(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	bbBlobs := blobsOf(t, bbImg)
	if err := s.Remove(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "busybox"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: err = %v, want ErrNotFound", err)
	}
	if err := s.Remove(ctx, "never-was:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove of an unknown name: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Image(ctx, "busybox"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Image after Remove: err = %v, want ErrNotFound", err)
	}
	if got, _ := s.List(ctx); len(got) != 1 || got[0].Name != "127.0.0.1:5000/app:1" {
		t.Errorf("List after Remove = %+v, want only 127.0.0.1:5000/app:1", got)
	}
	for _, h := range bbBlobs {
		if _, err := os.Stat(s.BlobPath(h)); err != nil {
			t.Errorf("blob %s removed within GCGrace: %v", h, err)
		}
	}
	// Make every blob old, then collect again through another Remove.
	old := time.Now().Add(-2 * GCGrace)
	entries, _ := os.ReadDir(s.blobsDir())
	for _, e := range entries {
		if err := os.Chtimes(filepath.Join(s.blobsDir(), e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Import(ctx, writeTree(t, map[string]string{"x": "x"}), "tmp", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "tmp"); err != nil {
		t.Fatal(err)
	}
	for _, h := range bbBlobs {
		if _, err := os.Stat(s.BlobPath(h)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old unreferenced blob %s: stat err = %v, want not exist", h, err)
		}
	}
	app, err := s.Image(ctx, "127.0.0.1:5000/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(app); err != nil {
		t.Errorf("image kept by the collection: %v", err)
	}
}

func fileSize(t *testing.T, s *Store, h v1.Hash) int64 {
	t.Helper()
	fi, err := os.Stat(s.BlobPath(h))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func blobsOf(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	hs := []v1.Hash{d, m.Config.Digest}
	for _, l := range m.Layers {
		hs = append(hs, l.Digest)
	}
	return hs
}

func TestWriteLayer(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"empty", map[string]string{}},
		{"small", map[string]string{"a/": "", "a/b": "bee\n"}},
		{"big", map[string]string{"big": strings.Repeat("0123456789abcdef", 1<<18)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			raw := tarOf(t, tc.files, epoch)
			write := func(w io.Writer) error { _, err := w.Write(raw); return err }
			l, err := s.WriteLayer(ctx, write)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := l.Digest()
			blob, err := os.ReadFile(s.BlobPath(d))
			if err != nil {
				t.Fatal(err)
			}
			if got := sha256Hash(blob); got != d {
				t.Errorf("Digest %s, blob has %s", d, got)
			}
			zr, err := gzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, raw) {
				t.Errorf("blob gunzips to %d bytes, want the %d written", len(plain), len(raw))
			}
			if diffID, _ := l.DiffID(); diffID != sha256Hash(plain) {
				t.Errorf("DiffID %s, want %s", diffID, sha256Hash(plain))
			}
			if size, _ := l.Size(); size != int64(len(blob)) {
				t.Errorf("Size %d, want %d", size, len(blob))
			}
			if mt, _ := l.MediaType(); mt != types.OCILayer {
				t.Errorf("MediaType %s, want %s", mt, types.OCILayer)
			}

			// Again: the same blob, and no file left in tmp/.
			l2, err := s.WriteLayer(ctx, write)
			if err != nil {
				t.Fatal(err)
			}
			if d2, _ := l2.Digest(); d2 != d {
				t.Errorf("second WriteLayer: digest %s, want %s", d2, d)
			}
			if entries, _ := os.ReadDir(s.tmpDir()); len(entries) != 0 {
				t.Errorf("tmp/ holds %d entries, want none", len(entries))
			}

			// An image of it, tagged and read back, is valid.
			img, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
				mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "test"}})
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.Tag(ctx, img, "layer:test")
			if err != nil {
				t.Fatal(err)
			}
			back, err := s.Image(ctx, "layer:test")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := back.Digest(); got != want {
				t.Errorf("read back digest %s, want %s", got, want)
			}
			if err := validate.Image(back); err != nil {
				t.Errorf("validate.Image: %v", err)
			}
		})
	}
}

func TestWriteLayerError(t *testing.T) {
	s := newStore(t)
	boom := errors.New("boom")
	_, err := s.WriteLayer(context.Background(), func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if entries, _ := os.ReadDir(s.tmpDir()); len(entries) != 0 {
		t.Errorf("tmp/ holds %d entries after a failed write, want none", len(entries))
	}
	if entries, _ := os.ReadDir(s.blobsDir()); len(entries) != 0 {
		t.Errorf("blobs/ holds %d entries after a failed write, want none", len(entries))
	}
}

func TestExportToTools(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	src := writeTree(t, map[string]string{"etc/hello": "hello from kiln\n", "bin/": ""})
	want, err := s.Import(ctx, src, "tools", ImportOptions{Created: epoch, Config: v1.Config{Cmd: []string{"/bin/sh"}}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(ctx, "tools")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := Export(ctx, img, "oci-layout:"+dir+":latest"); err != nil {
		t.Fatal(err)
	}
	// Exporting again under the same name replaces the entry.
	if err := Export(ctx, img, "oci-layout:"+dir); err != nil {
		t.Fatal(err)
	}

	t.Run("skopeo inspect", func(t *testing.T) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			t.Skip("skopeo is not installed")
		}
		out, err := exec.CommandContext(ctx, "skopeo", "inspect", "--raw", "oci:"+dir+":latest").Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, stderrOf(err))
		}
		if got := sha256Hash(out); got != want {
			t.Errorf("skopeo's raw manifest has digest %s, want %s", got, want)
		}
	})
	t.Run("skopeo inspect the store", func(t *testing.T) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			t.Skip("skopeo is not installed")
		}
		out, err := exec.CommandContext(ctx, "skopeo", "inspect", "--raw", "oci:"+filepath.Join(s.Root(), "oci")+":docker.io/library/tools:latest").Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, stderrOf(err))
		}
		if got := sha256Hash(out); got != want {
			t.Errorf("skopeo's raw manifest has digest %s, want %s", got, want)
		}
	})
	t.Run("umoci unpack", func(t *testing.T) {
		if _, err := exec.LookPath("umoci"); err != nil {
			t.Skip("umoci is not installed")
		}
		requireRoot(t)
		bundle := filepath.Join(t.TempDir(), "bundle")
		if out, err := exec.CommandContext(ctx, "umoci", "unpack", "--image", dir+":latest", bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack: %v\n%s", err, out)
		}
		got, err := os.ReadFile(filepath.Join(bundle, "rootfs", "etc", "hello"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "hello from kiln\n" {
			t.Errorf("rootfs/etc/hello = %q", got)
		}
		if fi, err := os.Stat(filepath.Join(bundle, "rootfs", "bin")); err != nil || !fi.IsDir() {
			t.Errorf("rootfs/bin: %v, want a directory", err)
		}
	})
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	imgs := map[string]v1.Image{}
	configs := map[string]v1.Hash{}
	for _, n := range []string{"one", "two"} {
		if _, err := s.Import(ctx, writeTree(t, map[string]string{"n": n}), n, ImportOptions{Created: epoch}); err != nil {
			t.Fatal(err)
		}
		img, err := s.Image(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		imgs[n] = img
		configs[n], _ = img.ConfigName()
	}
	tmp := t.TempDir()
	single := filepath.Join(tmp, "single")
	multi := filepath.Join(tmp, "multi")
	archive := filepath.Join(tmp, "one.tar")
	tagged := filepath.Join(tmp, "tagged.tar")
	for _, e := range []struct {
		img  string
		dest string
	}{
		{"one", "oci-layout:" + single + ":v1"},
		{"one", "oci-layout:" + multi},
		{"two", "oci-layout:" + multi + ":two"},
		{"one", "docker-archive:" + archive},
		{"two", "docker-archive:" + tagged + ":example.com/two:2"},
	} {
		if err := Export(ctx, imgs[e.img], e.dest); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ref     string
		want    string // image name, "" for an error
		errText string
	}{
		{ref: "oci-layout:" + single, want: "one"},
		{ref: "oci-layout:" + single + ":v1", want: "one"},
		{ref: "oci-layout:" + single + ":v2", errText: "0 images named v2"},
		{ref: "oci-layout:" + multi, want: "one"},
		{ref: "oci-layout:" + multi + ":latest", want: "one"},
		{ref: "oci-layout:" + multi + ":two", want: "two"},
		{ref: "oci-layout:" + filepath.Join(tmp, "none"), errText: "no such file"},
		{ref: "docker-archive:" + archive, want: "one"},
		{ref: "docker-archive:" + tagged + ":example.com/two:2", want: "two"},
		{ref: "docker-archive:" + tagged + ":example.com/two:3", errText: "not found"},
		{ref: "two", want: "two"},
		{ref: "three", errText: "image not found"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			img, err := s.Resolve(ctx, tc.ref)
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := img.ConfigName(); got != configs[tc.want] {
				t.Errorf("config %s, want %s (of %s)", got, configs[tc.want], tc.want)
			}
		})
	}
	if err := Export(ctx, imgs["one"], "registry:x"); err == nil {
		t.Error("Export to an unknown transport succeeded")
	}
}

func TestLayerDirs(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newStore(t)
	base := writeTree(t, map[string]string{"etc/hello": "hello\n", "etc/gone": "x"})
	if _, err := s.Import(ctx, base, "base", ImportOptions{Created: epoch}); err != nil {
		t.Fatal(err)
	}
	baseImg, err := s.Image(ctx, "base")
	if err != nil {
		t.Fatal(err)
	}
	// A second layer that deletes etc/gone and adds etc/new.
	top, err := s.WriteLayer(ctx, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, h := range []*tar.Header{
			{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755, ModTime: epoch},
			{Typeflag: tar.TypeReg, Name: "etc/.wh.gone", Mode: 0o644, ModTime: epoch},
			{Typeflag: tar.TypeReg, Name: "etc/new", Mode: 0o644, Size: 4, ModTime: epoch},
		} {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(tw, "new\n"); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(baseImg, top)
	if err != nil {
		t.Fatal(err)
	}

	dirs, err := s.LayerDirs(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 {
		t.Fatalf("LayerDirs gave %d dirs, want 2", len(dirs))
	}
	for i, l := range []v1.Layer{mustLayers(t, baseImg)[0], top} {
		diffID, _ := l.DiffID()
		if want := filepath.Join(s.Root(), "layers", diffID.Hex); dirs[i] != want {
			t.Errorf("dir %d = %s, want %s", i, dirs[i], want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dirs[0], "etc", "hello")); err != nil || string(b) != "hello\n" {
		t.Errorf("base etc/hello = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dirs[1], "etc", "new")); err != nil || string(b) != "new\n" {
		t.Errorf("top etc/new = %q, %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dirs[1], "etc", "gone"), &st); err != nil {
		t.Errorf("top etc/gone: %v, want a whiteout", err)
	} else if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("top etc/gone: mode %o rdev %d, want a 0/0 character device", st.Mode, st.Rdev)
	}

	inodes := func(dirs []string) []uint64 {
		var ino []uint64
		for _, d := range dirs {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(d, "etc"), &st); err != nil {
				t.Fatal(err)
			}
			ino = append(ino, st.Ino)
		}
		return ino
	}
	first := inodes(dirs)
	again, err := s.LayerDirs(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, inodes(again)); diff != "" {
		t.Errorf("second LayerDirs unpacked again: inodes of etc (-want +got):\n%s", diff)
	}

	// Concurrently, on a fresh store.
	s2 := newStore(t)
	if _, err := s2.Tag(ctx, img, "both"); err != nil {
		t.Fatal(err)
	}
	img2, err := s2.Image(ctx, "both")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([][]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], errs[i] = s2.LayerDirs(ctx, img2) })
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if b, err := os.ReadFile(filepath.Join(results[i][1], "etc", "new")); err != nil || string(b) != "new\n" {
			t.Errorf("goroutine %d: etc/new = %q, %v", i, b, err)
		}
	}
	if diff := cmp.Diff(results[0], results[1]); diff != "" {
		t.Errorf("the goroutines got different dirs (-0 +1):\n%s", diff)
	}
	if entries, _ := os.ReadDir(s2.tmpDir()); len(entries) != 0 {
		t.Errorf("tmp/ holds %d entries, want none", len(entries))
	}
}

func TestLayerDirsCorrupt(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Import(ctx, writeTree(t, map[string]string{"f": "x"}), "c", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	l := mustLayers(t, img)[0]
	d, _ := l.Digest()
	// The same tar, compressed differently: its diffID is right, its digest is not.
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.BlobPath(d), gzipOf(t, plain), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LayerDirs(ctx, img); err == nil || !strings.Contains(err.Error(), "blob "+d.String()+" in the store is corrupt") {
		t.Errorf("LayerDirs of a corrupt blob: err = %v, want a digest mismatch", err)
	}
	if entries, _ := os.ReadDir(s.layersDir()); len(entries) != 0 {
		t.Errorf("layers/ holds %d entries, want none", len(entries))
	}
}

func TestCollectLayerDirs(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newStore(t)
	dirsOf := map[string][]string{}
	for _, n := range []string{"keep", "drop"} {
		if _, err := s.Import(ctx, writeTree(t, map[string]string{"n": n}), n, ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		img, err := s.Image(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if dirsOf[n], err = s.LayerDirs(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirsOf["drop"][0]); err != nil {
		t.Errorf("layer dir used within GCGrace was removed: %v", err)
	}
	// A collection as if GCGrace had passed.
	im, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.collect(ctx, im, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirsOf["drop"][0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unreferenced layer dir: stat err = %v, want not exist", err)
	}
	if _, err := os.Stat(filepath.Join(dirsOf["keep"][0], "n")); err != nil {
		t.Errorf("layer dir of a tagged image: %v", err)
	}
	if entries, _ := os.ReadDir(s.blobsDir()); len(entries) != 3 {
		t.Errorf("blobs/ holds %d blobs, want the 3 of keep", len(entries))
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestConcurrentTag(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	stores := make([]*Store, 2)
	for i := range stores {
		s, err := Open(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	want := make([]string, 8)
	for i := range 8 {
		want[i] = fmt.Sprintf("img%d:latest", i)
		src := writeTree(t, map[string]string{"n": strconv.Itoa(i)})
		wg.Go(func() {
			_, errs[i] = stores[i%2].Import(ctx, src, want[i], ImportOptions{Created: epoch})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	list, err := stores[0].List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sum := range list {
		got = append(got, sum.Name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names after concurrent tags (-want +got):\n%s", diff)
	}
}

func TestOpenSweepsTmp(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if _, err := Open(ctx, root); err != nil {
		t.Fatal(err)
	}
	entries := []struct {
		name string
		dir  bool
		keep bool
	}{
		{name: "999999999-dead", dir: true, keep: false},
		{name: "999999998-deadfile", keep: false},
		{name: strconv.Itoa(os.Getpid()) + "-mine", dir: true, keep: true},
		{name: "notapid", keep: true},
	}
	for _, e := range entries {
		p := filepath.Join(root, "tmp", e.name)
		var err error
		if e.dir {
			err = os.MkdirAll(filepath.Join(p, "sub"), 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(ctx, root); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		_, err := os.Lstat(filepath.Join(root, "tmp", e.name))
		if got := err == nil; got != e.keep {
			t.Errorf("%s: kept = %v, want %v (stat err %v)", e.name, got, e.keep, err)
		}
	}
}

// TestNormalize: names are normalised as docker normalises them, to a
// full name with registry, Docker Hub's library/ namespace and a tag; and
// printed back in docker's familiar form.
func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want, familiar, errText string
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36", familiar: "busybox:1.36"},
		{in: "library/busybox", want: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "docker.io/library/busybox", want: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "index.docker.io/library/busybox:latest", want: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "docker.io/busybox:1", want: "docker.io/library/busybox:1", familiar: "busybox:1"},
		{in: "user/app", want: "docker.io/user/app:latest", familiar: "user/app:latest"},
		{in: "a/b/c", want: "docker.io/a/b/c:latest", familiar: "a/b/c:latest"},
		{in: "library/a/b", want: "docker.io/library/a/b:latest", familiar: "library/a/b:latest"},
		{in: "127.0.0.1:5000/app", want: "127.0.0.1:5000/app:latest", familiar: "127.0.0.1:5000/app:latest"},
		{in: "127.0.0.1:5000/app:1", want: "127.0.0.1:5000/app:1", familiar: "127.0.0.1:5000/app:1"},
		{in: "localhost/app", want: "localhost/app:latest", familiar: "localhost/app:latest"},
		{in: "quay.io/a/b@sha256:" + strings.Repeat("a", 64), want: "quay.io/a/b@sha256:" + strings.Repeat("a", 64), familiar: "quay.io/a/b@sha256:" + strings.Repeat("a", 64)},
		{in: "Upper", errText: `invalid image name "Upper"`},
		{in: "a:b:c", errText: "invalid image name"},
		{in: "", errText: "invalid image name"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normalize(tc.in)
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if f := Familiar(got); f != tc.familiar {
				t.Errorf("Familiar(%q) = %q, want %q", got, f, tc.familiar)
			}
		})
	}
	if _, err := normalizeTag("busybox@sha256:" + strings.Repeat("a", 64)); err == nil {
		t.Error("normalizeTag accepted a digest")
	}
}

func BenchmarkWriteLayer(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	// 64 MiB of hex text in one file, like realistic layer data.
	data := make([]byte, 32<<20)
	_, _ = rand.NewChaCha8([32]byte{}).Read(data)
	content := []byte(hex.EncodeToString(data))
	raw := tarOf(b, map[string]string{"data.hex": string(content)}, epoch)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// A different last byte each time, so every blob is written.
		raw[len(raw)-1025] = byte(i)
		if _, err := s.WriteLayer(ctx, func(w io.Writer) error { _, err := w.Write(raw); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRefKeepsBlobsFromCollection(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keep, err := s.WriteLayer(ctx, func(w io.Writer) error { return writeTestTar(w, "kept") })
	if err != nil {
		t.Fatal(err)
	}
	lose, err := s.WriteLayer(ctx, func(w io.Writer) error { return writeTestTar(w, "lost") })
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := keep.Digest()
	ld, _ := lose.Digest()
	if err := s.Ref(ctx, "cache/k1", []v1.Hash{kd}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Ref(ctx, "../escape", nil, nil); err == nil {
		t.Error("Ref with a name escaping refs/: no error")
	}
	im, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.collect(ctx, im, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.blobsDir(), kd.Hex)); err != nil {
		t.Errorf("a referenced blob was collected: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.blobsDir(), ld.Hex)); err == nil {
		t.Error("an unreferenced old blob was kept")
	}
	if err := s.Unref(ctx, "cache/k1"); err != nil {
		t.Fatal(err)
	}
	if err := s.collect(ctx, im, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.blobsDir(), kd.Hex)); err == nil {
		t.Error("a blob whose reference was removed was kept")
	}
}

func writeTestTar(w io.Writer, name string) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(name)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write([]byte(name)); err != nil {
		return err
	}
	return tw.Close()
}

// TestOpenMarksTopDirs: layers/ and tmp/ hold unrelated trees, made one
// after another by steps and unpacks: Open marks them as tops of
// directory hierarchies (chattr +T), so that ext4 spreads their trees
// over block groups (see package topdir).
func TestOpenMarksTopDirs(t *testing.T) {
	s := newStore(t)
	if _, err := topdir.Marked(s.Root()); errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("the file system of %s has no inode flags: %v", s.Root(), err)
	}
	for _, d := range []string{s.layersDir(), s.tmpDir()} {
		if ok, err := topdir.Marked(d); err != nil || !ok {
			t.Errorf("%s: marked %v, %v; want chattr +T", d, ok, err)
		}
	}
}
