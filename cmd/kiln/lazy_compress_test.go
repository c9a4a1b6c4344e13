package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// gzipBlobs returns the digests, sorted, of the blobs of root's store that
// are gzip streams.
func gzipBlobs(t *testing.T, root string) []string {
	t.Helper()
	dir := filepath.Join(root, "oci", "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		magic := make([]byte, 2)
		_, _ = f.Read(magic)
		f.Close()
		if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
			ds = append(ds, "sha256:"+e.Name())
		}
	}
	return ds
}

// TestBuildLayersUncompressed: a build without an output commits each
// step's layer as its tar, named by its diffID, and compresses nothing
// (issue 17 item 3: gzip is off the build's critical path); the image
// runs; an OCI output and a push to a layout compress the layers (gzip,
// same diffIDs, same files; the build with an output prints the digest
// of what it wrote), and a build in a fresh root gives the same digest.
func TestBuildLayersUncompressed(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": `from: busybox
steps:
  - run: seq 1 200000 > /numbers
  - run: echo two > /two
`})
	before := len(gzipBlobs(t, root))
	d := digestOf(t, mustKiln(t, root, "build", "-t", "app", dir))
	if after := len(gzipBlobs(t, root)); after != before {
		t.Errorf("the build wrote %d gzip blobs, want none (nothing is exported)", after-before)
	}
	in := inspectJSON(t, root, "app")
	if len(in.Layers) != 3 {
		t.Fatalf("%d layers, want 3 (busybox and two steps)", len(in.Layers))
	}
	for _, l := range in.Layers[1:] {
		if l.MediaType != string(types.OCIUncompressedLayer) || l.Digest != l.DiffID {
			t.Errorf("step layer %+v: want media type %s and its diffID as its digest", l, types.OCIUncompressedLayer)
		}
	}
	if r := mustKiln(t, root, "run", "app", "--", "sh", "-c", "wc -l < /numbers; cat /two"); r.stdout != "200000\ntwo\n" {
		t.Errorf("kiln run: %q", r.stdout)
	}

	// An export compresses; the build then keeps, and prints, the image
	// it wrote.
	out := filepath.Join(t.TempDir(), "oci")
	printed := digestOf(t, mustKiln(t, root, "build", "-t", "app", "--output", "type=oci,dest="+out, dir))
	exported := layoutImage(t, out)
	if ed, err := exported.Digest(); err != nil || ed.String() != printed {
		t.Errorf("the build with an output printed %s, wrote %s (%v)", printed, ed, err)
	}
	m, err := exported.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := exported.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("exported layer %d has media type %s, want %s", i, l.MediaType, types.OCILayer)
		}
		if i > 0 && cf.RootFS.DiffIDs[i].String() != in.Layers[i].DiffID {
			t.Errorf("exported layer %d has diffID %s, want %s", i, cf.RootFS.DiffIDs[i], in.Layers[i].DiffID)
		}
	}
	pushed := kilnImage(t, root, "app", filepath.Join(t.TempDir(), "pushed"))
	if a, b := flatten(t, pushed), flatten(t, exported); len(a) != len(b) {
		t.Errorf("push and --output differ: %d and %d entries", len(a), len(b))
	}
	if pd, err := pushed.Digest(); err != nil {
		t.Fatal(err)
	} else if ed, _ := exported.Digest(); pd != ed {
		t.Errorf("pushed %s, exported %s: want one digest", pd, ed)
	}

	// Stable: a fresh root gives the same image.
	if d2 := digestOf(t, mustKiln(t, buildRoot(t), "build", "-t", "app", dir)); d2 != d {
		t.Errorf("a fresh root built %s, want %s", d2, d)
	}
}
