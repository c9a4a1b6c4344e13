package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The fuzz targets of layer extraction: whatever tar bytes come in,
// Extract returns, never panics and never writes outside its directory;
// and what WriteDir archives, Extract unpacks to the same tree. Run one long
// with, for example:
//
//	go test -run '^$' -fuzz '^FuzzExtract$' -fuzztime 10m ./layer/

// fuzzTar builds seed tars.
func fuzzTar(f *testing.F, hdrs ...*tar.Header) []byte {
	f.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		var body []byte
		if h.Typeflag == tar.TypeReg {
			body = []byte("data of " + h.Name)
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			f.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// checkContained fails t if anything changed next to root in base: the
// sentinel directory must stay empty and base must hold only root,
// sentinel and secret.
func checkContained(t *testing.T, base string) {
	t.Helper()
	if ents, _ := os.ReadDir(filepath.Join(base, "sentinel")); len(ents) != 0 {
		t.Fatalf("extract wrote %v into the sentinel next to its directory", ents)
	}
	if b, err := os.ReadFile(filepath.Join(base, "secret")); err != nil || string(b) != "secret" {
		t.Fatalf("the secret next to the directory changed: %q, %v", b, err)
	}
	ents, _ := os.ReadDir(base)
	if len(ents) != 3 {
		t.Fatalf("extract left %v next to its directory, want only root, secret and sentinel", ents)
	}
}

// hostileBase makes base/sentinel (empty) and base/secret.
func hostileBase(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "sentinel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return base
}

func FuzzExtract(f *testing.F) {
	mt := time.Unix(1_700_000_000, 0)
	f.Add(fuzzTar(f,
		&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		&tar.Header{Name: "d/f", Typeflag: tar.TypeReg, ModTime: mt},
		&tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "f"},
		&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "d/f"},
	))
	f.Add(fuzzTar(f,
		&tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "../sentinel"},
		&tar.Header{Name: "s/x", Typeflag: tar.TypeReg},
	))
	f.Add(fuzzTar(f,
		&tar.Header{Name: "../sentinel/x", Typeflag: tar.TypeReg},
		&tar.Header{Name: "/abs/f", Typeflag: tar.TypeReg},
		&tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "../secret"},
	))
	f.Add(fuzzTar(f,
		&tar.Header{Name: "w/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "w/.wh..wh..opq", Typeflag: tar.TypeReg},
		&tar.Header{Name: "w/.wh.gone", Typeflag: tar.TypeReg},
		&tar.Header{Name: ".wh...", Typeflag: tar.TypeReg},
	))
	f.Add(fuzzTar(f,
		&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo},
		&tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
		&tar.Header{Name: "suid", Typeflag: tar.TypeReg, Mode: 0o4755},
		&tar.Header{Name: "x", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.overlay.opaque": "y"}},
	))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := hostileBase(t)
		_ = Extract(context.Background(), bytes.NewReader(data), filepath.Join(base, "root"))
		checkContained(t, base)
	})
}

// FuzzWriteDirRoundTrip extracts the fuzz input; when that succeeds,
// archiving the tree with WriteDir and extracting the archive again gives
// the same tree, and archiving that gives the same bytes.
func FuzzWriteDirRoundTrip(f *testing.F) {
	mt := time.Unix(1_700_000_000, 0)
	f.Add(fuzzTar(f,
		&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, ModTime: mt},
		&tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: mt},
		&tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "f", ModTime: mt},
		&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "d/f"},
		&tar.Header{Name: "e/.wh.x", Typeflag: tar.TypeReg},
	))
	f.Add(fuzzTar(f,
		&tar.Header{Name: "a/b/c/d/e", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 1000, ModTime: mt},
		&tar.Header{Name: "p", Typeflag: tar.TypeFifo, ModTime: mt},
		&tar.Header{Name: "x", Typeflag: tar.TypeReg, ModTime: mt, PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}},
	))
	f.Fuzz(func(t *testing.T, data []byte) {
		requireRoot(t)
		ctx := context.Background()
		first := t.TempDir()
		if err := Extract(ctx, bytes.NewReader(data), first); err != nil {
			return
		}
		var tar1 bytes.Buffer
		if err := WriteDir(ctx, &tar1, first); err != nil {
			t.Fatalf("WriteDir of an extracted tree: %v", err)
		}
		second := filepath.Join(t.TempDir(), "second")
		if err := Extract(ctx, bytes.NewReader(tar1.Bytes()), second); err != nil {
			t.Fatalf("Extract of what WriteDir wrote: %v", err)
		}
		var tar2 bytes.Buffer
		if err := WriteDir(ctx, &tar2, second); err != nil {
			t.Fatalf("WriteDir of the second tree: %v", err)
		}
		if !bytes.Equal(tar1.Bytes(), tar2.Bytes()) {
			t.Fatalf("WriteDir → Extract → WriteDir changed the tar:\nfirst  %v\nsecond %v", tarNames(t, tar1.Bytes()), tarNames(t, tar2.Bytes()))
		}
	})
}
