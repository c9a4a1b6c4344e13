package image

import (
	"bytes"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestAssemble(t *testing.T) {
	l1, err := random.Layer(512, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := random.Layer(512, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Unix(1700000000, 0).UTC()
	cfg := Config{Config: v1.Config{Cmd: []string{"/app"}, Env: []string{"A=b"}, WorkingDir: "/w", User: "app",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}}, Labels: map[string]string{"k": "v"}}}
	for _, tc := range []struct {
		name   string
		base   v1.Image
		layers int
	}{
		{"scratch", nil, 2},
		{"random base", mustRandom(t), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Assemble(tc.base, []Layer{{Layer: l1, CreatedBy: "run: one"}, {Layer: l2, CreatedBy: "copy: two"}}, cfg, created)
			if err != nil {
				t.Fatal(err)
			}
			ls, _ := img.Layers()
			if len(ls) != tc.layers {
				t.Errorf("%d layers, want %d", len(ls), tc.layers)
			}
			cf, _ := img.ConfigFile()
			if cf.Config.Cmd[0] != "/app" || cf.Config.WorkingDir != "/w" || !cf.Created.Time.Equal(created) || cf.OS != "linux" {
				t.Errorf("config %+v", cf)
			}
			h := cf.History[len(cf.History)-1]
			if h.CreatedBy != "copy: two" || !h.Created.Time.Equal(created) {
				t.Errorf("last history %+v", h)
			}
			mt, _ := img.MediaType()
			if mt != types.OCIManifestSchema1 {
				t.Errorf("media type %s", mt)
			}
			raw, _ := img.RawManifest()
			if !bytes.Contains(raw, []byte(types.OCIConfigJSON)) {
				t.Errorf("manifest has no OCI config: %s", raw)
			}
			if err := validate.Image(img, validate.Fast); err != nil {
				t.Errorf("validate: %v", err)
			}
			// Same inputs, same digest.
			again, _ := Assemble(tc.base, []Layer{{Layer: l1, CreatedBy: "run: one"}, {Layer: l2, CreatedBy: "copy: two"}}, cfg, created)
			d1, _ := img.Digest()
			d2, _ := again.Digest()
			if d1 != d2 {
				t.Errorf("digests differ: %s %s", d1, d2)
			}
		})
	}
}

func mustRandom(t *testing.T) v1.Image {
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestAssembleDeep assembles an image of 500 layers and checks that its
// layers come as the manifest lists them, and cheaply: mutate's image
// hashed its config again for each layer (and for each image it wraps),
// a second of JSON for a 500-step build.
func TestAssembleDeep(t *testing.T) {
	const n = 500
	layers := make([]Layer, n)
	for i := range layers {
		l, err := random.Layer(16, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		layers[i] = Layer{Layer: l, CreatedBy: "run: step"}
	}
	img, err := Assemble(mustRandom(t), layers, Config{}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != len(m.Layers) {
		t.Fatalf("%d layers, the manifest lists %d", len(ls), len(m.Layers))
	}
	for i, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d != m.Layers[i].Digest {
			t.Fatalf("layer %d has digest %s, the manifest lists %s", i, d, m.Layers[i].Digest)
		}
		if byDigest, err := img.LayerByDigest(d); err != nil || byDigest != l {
			t.Fatalf("LayerByDigest(%s) = %v, %v; want layer %d", d, byDigest, err, i)
		}
	}
	if allocs := testing.AllocsPerRun(3, func() {
		if _, err := img.Layers(); err != nil {
			t.Fatal(err)
		}
	}); allocs > 10 {
		t.Errorf("Layers of a %d-layer image made %.0f allocations, want at most 10", n+2, allocs)
	}
}
