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
