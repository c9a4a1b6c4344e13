package image

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer is one layer to add, with the history entry that names the step
// that made it.
type Layer struct {
	Layer     v1.Layer
	CreatedBy string
	Created   time.Time // when the step made it; the zero time means created
}

// Assemble returns base (nil for scratch) with layers on top and the
// config cfg, dated created. The result has OCI media types, the host's
// architecture when the base has none, and one history entry per layer.
func Assemble(base v1.Image, layers []Layer, cfg Config, created time.Time) (v1.Image, error) {
	img := base
	if img == nil {
		img = empty.Image
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		when := l.Created
		if when.IsZero() {
			when = created
		}
		mt, err := ociLayerType(l.Layer)
		if err != nil {
			return nil, fmt.Errorf("adding layers: %w", err)
		}
		adds[i] = mutate.Addendum{
			Layer:     l.Layer,
			MediaType: mt,
			History:   v1.History{Created: v1.Time{Time: when.UTC()}, CreatedBy: l.CreatedBy},
		}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg.Config
	cf.Author = cfg.Author
	cf.Created = v1.Time{Time: created}
	if cf.OS == "" {
		cf.OS = "linux"
	}
	if cf.Architecture == "" {
		cf.Architecture = runtime.GOARCH
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting image config: %w", err)
	}
	if cfg.Healthcheck != nil && cfg.StartInterval != 0 {
		if img, err = withStartInterval(img, cfg.StartInterval); err != nil {
			return nil, fmt.Errorf("setting the healthcheck's start interval: %w", err)
		}
	}
	var all []v1.Layer
	if base != nil {
		if all, err = base.Layers(); err != nil {
			return nil, fmt.Errorf("reading base layers: %w", err)
		}
	}
	for _, l := range layers {
		all = append(all, l.Layer)
	}
	return &assembled{Image: img, layers: all}, nil
}

// ociLayerType is the OCI media type of l: its own, a Docker one made OCI
// (a step's layer is a gzip blob or, uncompressed, its tar; see
// store.StageLayer).
func ociLayerType(l v1.Layer) (types.MediaType, error) {
	mt, err := l.MediaType()
	if err != nil {
		return "", err
	}
	switch mt {
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer, nil
	case types.OCILayerZStd:
		return mt, nil
	}
	return types.OCILayer, nil
}

// assembled is an image made by Assemble: mutate's, with its layers known
// as they were given. mutate finds each layer by digest, hashing the
// config again at each (and at each image it wraps): a cost quadratic in
// the number of layers, a second for an image of 500.
type assembled struct {
	v1.Image
	layers []v1.Layer

	once     sync.Once
	byDigest map[v1.Hash]v1.Layer
}

func (a *assembled) Layers() ([]v1.Layer, error) { return slices.Clone(a.layers), nil }

func (a *assembled) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	a.once.Do(func() {
		a.byDigest = make(map[v1.Hash]v1.Layer, len(a.layers))
		for _, l := range a.layers {
			if d, err := l.Digest(); err == nil {
				a.byDigest[d] = l
			}
		}
	})
	if l, ok := a.byDigest[h]; ok {
		return l, nil
	}
	return a.Image.LayerByDigest(h) // the config, or a layer whose digest was not known
}
