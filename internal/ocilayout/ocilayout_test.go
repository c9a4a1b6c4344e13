package ocilayout

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testImage is a random OCI image of two layers.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(64, 2)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// artifact is testImage with an artifactType in its manifest.
type artifact struct{ v1.Image }

func (a artifact) RawManifest() ([]byte, error) {
	b, err := a.Image.RawManifest()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["artifactType"] = "application/vnd.example.thing"
	return json.Marshal(m)
}

func put(t *testing.T, dir string, img v1.Image, ref string) {
	t.Helper()
	l, err := Lock(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Put(t.Context(), img, ref); err != nil {
		t.Fatal(err)
	}
}

type entry struct{ Ref, ArtifactType string }

func entries(t *testing.T, dir string) []entry {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []entry
	for _, d := range im.Manifests {
		out = append(out, entry{d.Annotations[RefName], d.ArtifactType})
		if _, err := ii.Image(d.Digest); err != nil {
			t.Errorf("go-containerregistry reads no image %s: %v", d.Digest, err)
		}
	}
	return out
}

// TestPut: images put in a layout replace the entry of their ref, plain
// images have no artifactType, an artifact keeps its own, every file is
// 0644 and umoci lists the refs.
func TestPut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	a, b := testImage(t), testImage(t)
	put(t, dir, a, "one")
	put(t, dir, artifact{b}, "two")
	put(t, dir, b, "one")
	want := []entry{{"two", "application/vnd.example.thing"}, {"one", ""}}
	if diff := cmp.Diff(want, entries(t, dir)); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if info, err := d.Info(); err != nil || info.Mode() != 0o644 {
			t.Errorf("%s: mode %v (%v), want 0644", p, info.Mode(), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if umoci, err := exec.LookPath("umoci"); err == nil {
		out, err := exec.CommandContext(t.Context(), umoci, "ls", "--layout", dir).Output()
		if err != nil || string(out) != "two\none\n" {
			t.Errorf("umoci ls: %q, %v", out, err)
		}
	}

	l, err := Lock(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Remove("two"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if diff := cmp.Diff([]entry{{"one", ""}}, entries(t, dir)); diff != "" {
		t.Errorf("after Remove (-want +got):\n%s", diff)
	}
}

// TestPutConcurrent: writers holding the lock in turn lose no entry.
func TestPutConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			put(t, dir, testImage(t), strings.Repeat("x", i+1))
		}()
	}
	wg.Wait()
	if n := len(entries(t, dir)); n != 8 {
		t.Errorf("%d entries after 8 writers, want 8", n)
	}
}

// badLayer claims a digest its content does not have.
type badLayer struct{ v1.Layer }

func (badLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader([]byte("not the layer"))), nil
}

type badImage struct{ v1.Image }

func (i badImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	return []v1.Layer{badLayer{ls[0]}}, nil
}

// TestPutWrongDigest: a blob whose content does not have its digest is
// refused, and no file is left under its name.
func TestPutWrongDigest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	img := testImage(t)
	l, err := Lock(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Put(t.Context(), badImage{img}, "bad")
	if err == nil || !strings.Contains(err.Error(), "its content has digest") {
		t.Fatalf("Put of a bad layer: %v, want a digest error", err)
	}
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d.Hex)); !os.IsNotExist(err) {
		t.Errorf("the bad blob was left: %v", err)
	}
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if len(blobs) != 0 {
		t.Errorf("blobs left: %v", blobs)
	}
}
