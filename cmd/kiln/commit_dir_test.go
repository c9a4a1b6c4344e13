package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/image/store"
)

// TestRunStepLayerKeptAsDir: a run step's layer is committed as its
// directory, without writing its tar as a blob; the image still exports
// (an OCI layout whose layer holds a tar of the step's diffID), kiln
// cache verify passes, and a file of the layer directory changed after
// the build is found by kiln cache verify.
func TestRunStepLayerKeptAsDir(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n" +
		"  - run: head -c 3000000 /dev/urandom > /big && mkdir /d && echo small > /d/small\n"})
	mustKiln(t, root, "build", "-t", "kept:1", dir)

	ctx := context.Background()
	s, err := store.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(ctx, "kept:1")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	diffID := cf.RootFS.DiffIDs[len(cf.RootFS.DiffIDs)-1]
	if _, err := os.Stat(s.BlobPath(diffID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the run step's layer %s was written as a tar blob (stat: %v), want it kept as its directory only", diffID, err)
	}
	if v := mustKiln(t, root, "cache", "verify").stdout; !strings.HasSuffix(v, " 0 bad\n") {
		t.Errorf("cache verify: %q", v)
	}

	// Exported (a cache hit), the layer is the step's tar.
	out := filepath.Join(t.TempDir(), "oci")
	mustKiln(t, root, "build", "-t", "kept:1", "--output", "type=oci,dest="+out, dir)
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("exported index: %v, %v", im, err)
	}
	eimg, err := ii.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := eimg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, err = io.Copy(h, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID.String() {
		t.Errorf("exported layer's tar hashes to %s, want the step's diffID %s", got, diffID)
	}

	// A changed byte of the layer directory: cache verify names it.
	big := filepath.Join(s.LayerPath(diffID), "big")
	f, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := kiln(t, root, nil, "cache", "verify")
	if r.code == 0 || !strings.Contains(r.stdout, "layer directory "+diffID.Hex[:12]) {
		t.Errorf("cache verify of a changed layer directory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
