package store

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Unpacking a hostile base or pulled layer into the store: each one either
// unpacks inside its layers/<diffid> directory or fails with a clear error,
// leaving no layer directory and no temp file, and nothing outside the
// store changes.

// hostileEntry is one entry of a hostile test tar.
type hostileEntry struct {
	name, link string
	typ        byte
	data       string
}

// hostileTar writes entries as a tar.
func hostileTar(t *testing.T, entries ...hostileEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hostileFixture reads a hostile tar of the repository's
// testdata/hostile, which image/layer's tests extract too.
func hostileFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layerOf is a gzipped layer of the tar b.
func layerOf(t *testing.T, b []byte) v1.Layer {
	t.Helper()
	gz := gzipOf(t, b)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// lyingLayer is a layer whose diffID is not that of its content.
type lyingLayer struct {
	v1.Layer
	diffID v1.Hash
}

func (l lyingLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func TestLayerDirHostile(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		layer   func(t *testing.T, base string) v1.Layer
		wantErr string // empty: unpacks, contained
		want    []string
	}{
		{
			name: "dot dot",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileFixture(t, "dotdot.tar"))
			},
			wantErr: "escapes the layer directory",
		},
		{
			name: "symlink to / then a file through it",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileTar(t,
					hostileEntry{name: "r", link: "/", typ: tar.TypeSymlink},
					hostileEntry{name: "r" + base + "/sentinel/x", typ: tar.TypeReg, data: "pwned"}))
			},
			wantErr: "not a directory",
		},
		{
			name: "hardlink to an outside file",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileTar(t, hostileEntry{name: "l", link: "../../../secret", typ: tar.TypeLink}))
			},
			wantErr: "escapes the layer directory",
		},
		{
			name: "whiteout named dot dot",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileFixture(t, "whiteout-dotdot.tar"))
			},
			wantErr: "invalid whiteout",
		},
		{
			name: "a 10 GB file with a short body",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileFixture(t, "short-body.tar"))
			},
			wantErr: "unexpected EOF",
		},
		{
			name: "a path past PATH_MAX",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileFixture(t, "path-max.tar"))
			},
			wantErr: "file name too long",
		},
		{
			name: "a diffID that is not the content's",
			layer: func(t *testing.T, base string) v1.Layer {
				l := layerOf(t, hostileTar(t, hostileEntry{name: "f", typ: tar.TypeReg, data: "x"}))
				return lyingLayer{Layer: l, diffID: sha256Hash([]byte("something else"))}
			},
			wantErr: "content has diffID",
		},
		{
			name: "a later escaping entry fails the whole layer",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileTar(t,
					hostileEntry{name: "/etc/passwd", typ: tar.TypeReg, data: "root::0:0::/:/bin/sh\n"},
					hostileEntry{name: "/dev/", typ: tar.TypeDir},
					hostileEntry{name: "/dev/kmsg-fifo", typ: tar.TypeFifo},
					hostileEntry{name: "../../etc/motd", typ: tar.TypeReg, data: "no"}))
			},
			wantErr: "escapes the layer directory",
		},
		{
			name: "absolute names are taken inside",
			layer: func(t *testing.T, base string) v1.Layer {
				return layerOf(t, hostileTar(t,
					hostileEntry{name: "/etc/passwd", typ: tar.TypeReg, data: "root::0:0::/:/bin/sh\n"},
					hostileEntry{name: "/dev/", typ: tar.TypeDir},
					hostileEntry{name: "/dev/fifo", typ: tar.TypeFifo}))
			},
			want: []string{"dev", "dev/fifo", "etc", "etc/passwd"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			for _, d := range []string{"sentinel"} {
				if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(context.Background(), filepath.Join(base, "store"))
			if err != nil {
				t.Fatal(err)
			}
			dir, err := s.LayerDir(context.Background(), tt.layer(t, base))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("LayerDir: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("LayerDir: error %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil {
				t.Logf("error: %.300s", err)
				if ents, _ := os.ReadDir(s.layersDir()); len(ents) != 0 {
					t.Errorf("a failed unpack left layers/%s", ents[0].Name())
				}
			}
			if ents, _ := os.ReadDir(s.tmpDir()); len(ents) != 0 {
				t.Errorf("the unpack left tmp/%s", ents[0].Name())
			}
			if ents, _ := os.ReadDir(filepath.Join(base, "sentinel")); len(ents) != 0 {
				t.Errorf("the unpack wrote %v into the sentinel next to the store", ents)
			}
			if b, err := os.ReadFile(filepath.Join(base, "secret")); err != nil || string(b) != "secret" {
				t.Errorf("the secret next to the store changed: %q, %v", b, err)
			}
			if ents, _ := os.ReadDir(base); len(ents) != 3 {
				t.Errorf("next to the store: %v, want only sentinel, secret and store", ents)
			}
			if tt.want != nil {
				var got []string
				if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
					if err != nil || p == dir {
						return err
					}
					rel, _ := filepath.Rel(dir, p)
					got = append(got, rel)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("layer directory holds %v, want %v", got, tt.want)
				}
			}
		})
	}
}
