package main

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestFlattenSeesXattrsAndHardLinks checks the differential tests' own
// flattening: an xattr is part of a file's entry, and every path of a
// hard-linked file names the whole group, whichever path the tar gives
// first.
func TestFlattenSeesXattrsAndHardLinks(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "d/a", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 5, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.user.demo": "hello"}},
		{Name: "d/b", Typeflag: tar.TypeLink, Linkname: "d/a"},
		{Name: "c", Typeflag: tar.TypeLink, Linkname: "d/b"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("same\n"))
		}
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	tree := flatten(t, img)
	want := diffEntry{Type: tar.TypeReg, Mode: "4755", Data: "same\n", HardLinks: "/c /d/a /d/b", Xattrs: "user.demo=hello"}
	for _, p := range []string{"/d/a", "/d/b", "/c"} {
		if tree[p] != want {
			t.Errorf("%s: %+v, want %+v", p, tree[p], want)
		}
	}
}
