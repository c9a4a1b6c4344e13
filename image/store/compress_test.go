package store

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"
)

// TestRecompress recompresses a two-layer gzip image to zstd and back:
// the layers change media type and digest, the diffIDs and config stay,
// the same input gives the same blobs, and the result is a valid image
// that the store can tag.
func TestRecompress(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	raws := [][]byte{
		tarOf(t, map[string]string{"a/": "", "a/b": "bee\n"}, epoch),
		tarOf(t, map[string]string{"big": strings.Repeat("0123456789abcdef", 1<<16)}, epoch),
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.DockerManifestSchema2), types.DockerConfigJSON)
	for _, raw := range raws {
		l, err := s.WriteLayer(ctx, func(w io.Writer) error { _, err := w.Write(raw); return err })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l}); err != nil {
			t.Fatal(err)
		}
	}

	same, err := s.Recompress(ctx, img, Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if same != img {
		t.Error("Recompress to gzip of a gzip image returned a new image")
	}

	z, err := s.Recompress(ctx, img, Zstd)
	if err != nil {
		t.Fatal(err)
	}
	// validate reads layers as gzip only: check the manifest and config
	// with it, the layers below.
	if err := validate.Image(z, validate.Fast); err != nil {
		t.Errorf("validate.Image of the zstd image: %v", err)
	}
	if mt, _ := z.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("the zstd image has media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	if want, got := diffIDs(t, img), diffIDs(t, z); !cmp.Equal(want, got) {
		t.Errorf("diffIDs (-want +got):\n%s", cmp.Diff(want, got))
	}
	layers, err := z.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayerZStd {
			t.Errorf("layer %d has media type %s", i, mt)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zstd.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		zr.Close()
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d is not zstd: %v", i, err)
		}
		if !bytes.Equal(plain, raws[i]) {
			t.Errorf("layer %d decompresses to %d bytes, want the %d written", i, len(plain), len(raws[i]))
		}
	}

	again, err := s.Recompress(ctx, img, Zstd)
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := digestOf(t, z), digestOf(t, again); d1 != d2 {
		t.Errorf("two recompressions gave %s and %s", d1, d2)
	}
	want, err := s.Tag(ctx, z, "zstd:test")
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.Image(ctx, "zstd:test")
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, back); got != want {
		t.Errorf("tagged %s, read back %s", want, got)
	}

	g, err := s.Recompress(ctx, back, Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(g); err != nil {
		t.Errorf("validate.Image of the image recompressed back to gzip: %v", err)
	}
	if got, want := layerDigests(t, g), layerDigests(t, img); !cmp.Equal(want, got) {
		t.Errorf("back to gzip, the layer digests differ from the original ones (-want +got):\n%s", cmp.Diff(want, got))
	}
}

func TestParseCompression(t *testing.T) {
	for _, s := range []string{"gzip", "zstd"} {
		if c, err := ParseCompression(s); err != nil || string(c) != s {
			t.Errorf("ParseCompression(%q) = %q, %v", s, c, err)
		}
	}
	if _, err := ParseCompression("lz4"); err == nil {
		t.Error("ParseCompression(lz4) succeeded")
	}
}

func diffIDs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
