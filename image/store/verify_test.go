package store

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// importedLayer imports a one-file image "c" and returns it and its layer.
func importedLayer(t *testing.T, s *Store) (v1.Image, v1.Layer) {
	t.Helper()
	if _, err := s.Import(context.Background(), writeTree(t, map[string]string{"f": "hello", "d/g": "world"}), "c", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	return img, mustLayers(t, img)[0]
}

func flip(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptBlobLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img, l := importedLayer(t, s)
	d, _ := l.Digest()
	if err := s.VerifyBlob(ctx, d); err != nil {
		t.Fatalf("VerifyBlob of a good blob: %v", err)
	}
	flip(t, s.BlobPath(d))

	var cbe *CorruptBlobError
	if err := s.VerifyBlob(ctx, d); !errors.As(err, &cbe) || cbe.Digest != d {
		t.Errorf("VerifyBlob of a corrupt blob: %v, want a *CorruptBlobError for %s", err, d)
	}
	for _, open := range []struct {
		name string
		f    func() (io.ReadCloser, error)
	}{{"Compressed", l.Compressed}, {"Uncompressed", l.Uncompressed}} {
		rc, err := open.f()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if !errors.As(err, &cbe) || !strings.Contains(err.Error(), "blob "+d.String()+" in the store is corrupt") {
			t.Errorf("reading %s: %v, want a *CorruptBlobError naming %s", open.name, err, d)
		}
	}
	out := t.TempDir()
	for _, dest := range []string{"docker-archive:" + filepath.Join(out, "a.tar"), "oci-layout:" + filepath.Join(out, "new")} {
		if err := Export(ctx, img, dest); !errors.As(err, &cbe) {
			t.Errorf("Export to %s: %v, want a *CorruptBlobError", dest, err)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed export left %d entries behind", len(ents))
	}
}

// TestExportIntoLayoutKeepsIt exports a corrupt image into an existing
// layout: the export fails, and the layout keeps its index and gets no
// half-written blob.
func TestExportIntoLayoutKeepsIt(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img, _ := importedLayer(t, s)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := Export(ctx, img, "oci-layout:"+dir+":good"); err != nil {
		t.Fatal(err)
	}
	index, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	// The same layer in another image: a new blob for the layout.
	if _, err := s.Import(ctx, writeTree(t, map[string]string{"other": "x"}), "o", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	o, err := s.Image(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	od, _ := mustLayers(t, o)[0].Digest()
	flip(t, s.BlobPath(od))
	if err := Export(ctx, o, "oci-layout:"+dir+":bad"); err == nil {
		t.Fatal("Export of a corrupt image succeeded")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "index.json")); string(got) != string(index) {
		t.Errorf("index.json changed:\n%s\nwant\n%s", got, index)
	}
	if _, err := os.Lstat(filepath.Join(dir, "blobs", "sha256", od.Hex)); err == nil {
		t.Errorf("the corrupt blob was left in the layout")
	}
	if _, err := fromLayout(dir, "good"); err != nil {
		t.Errorf("the layout's good image: %v", err)
	}
}

func TestVerifyLayerDir(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		bad    bool
	}{
		{"untouched", func(t *testing.T, dir string) {}, false},
		{"touched by markUsed", func(t *testing.T, dir string) {
			if err := markUsed(dir); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"file added", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "evil"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"file rewritten, same size, same mtime", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "f")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("HELLO"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"mode changed", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "d", "g"), 0o4755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"xattr added", func(t *testing.T, dir string) {
			if err := setXattr(filepath.Join(dir, "d"), "trusted.overlay.opaque", "y"); err != nil {
				t.Skipf("setting a trusted xattr: %v", err)
			}
		}, true},
		{"file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "d", "g")); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			img, _ := importedLayer(t, s)
			dirs, err := s.LayerDirs(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, dirs[0])
			id, _ := mustLayers(t, img)[0].DiffID()
			err = s.VerifyLayerDir(ctx, id)
			if got := errors.Is(err, ErrLayerDirChanged); got != tc.bad {
				t.Errorf("VerifyLayerDir: %v, want bad = %v", err, tc.bad)
			}
			// After a crash (a dead kiln's tmp/ entry, which Open sweeps), a
			// new Store (a new kiln process) hands it out as it is only if
			// it is unchanged; a changed one is made again from its blob,
			// with a warning. Without a crash, see
			// TestLayerDirCheckedOncePerEpoch.
			if err := os.Mkdir(filepath.Join(s.tmpDir(), strconv.Itoa(deadPid(t))+"-left"), 0o700); err != nil {
				t.Fatal(err)
			}
			var warnings []string
			s2, err := Open(ctx, s.Root(), WithWarnings(func(m string) { warnings = append(warnings, m) }))
			if err != nil {
				t.Fatal(err)
			}
			if _, err = s2.LayerDirs(ctx, img); err != nil {
				t.Fatalf("LayerDirs: %v", err)
			}
			if got := len(warnings) == 1 && strings.Contains(warnings[0], id.Hex); got != tc.bad {
				t.Errorf("LayerDirs warned %q, want a warning naming %s = %v", warnings, id.Hex, tc.bad)
			}
			if err := s2.VerifyLayerDir(ctx, id); err != nil {
				t.Errorf("VerifyLayerDir after LayerDirs: %v", err)
			}
		})
	}
}

func TestLayoutInputChecked(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img, l := importedLayer(t, s)
	good := filepath.Join(t.TempDir(), "good")
	if err := Export(ctx, img, "oci-layout:"+good); err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	md, _ := img.Digest()
	ld, _ := l.Digest()
	blob := func(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", "sha256", h.Hex) }
	for _, tc := range []struct {
		name string
		h    v1.Hash
		want string
	}{
		{"manifest", md, "manifest " + md.String() + " of oci-layout"},
		{"config", m.Config.Digest, "config " + m.Config.Digest.String() + " of oci-layout"},
		{"layer", ld, "layer " + ld.String() + " of oci-layout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
				t.Fatal(err)
			}
			p := blob(dir, tc.h)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, append(b, ' '), 0o644); err != nil {
				t.Fatal(err)
			}
			s := newStore(t)
			img, err := s.Resolve(ctx, "oci-layout:"+dir)
			if err == nil {
				_, err = s.LayerDirs(ctx, img)
			}
			if err == nil {
				_, err = s.Tag(ctx, img, "x")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("reading a layout with a changed %s: %v, want an error with %q", tc.name, err, tc.want)
			}
		})
	}
}

func setXattr(p, name, value string) error {
	return unix.Lsetxattr(p, name, []byte(value), 0)
}
