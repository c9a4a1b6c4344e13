package module

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/manifest"
)

// The media types of a published module.
const (
	ArtifactType    = "application/vnd.kiln.module.v1"
	ConfigMediaType = "application/vnd.kiln.module.config.v1+json"
	LayerMediaType  = "application/vnd.kiln.module.layer.v1.tar+gzip"
)

// Config is a published module's config: what kiln module doc shows
// without fetching its files.
type Config struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Params      []manifest.Param `json:"params,omitempty"`
}

// Pack makes the artifact of the module directory dir: it checks that
// dir holds a module (its ModuleFile's parameters read) and tars the
// directory with every timestamp at the epoch, so that the same files
// give the same digest.
func Pack(ctx context.Context, dir string) (v1.Image, error) {
	info, err := manifest.ReadModule(filepath.Join(dir, manifest.ModuleFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("packing module %s: no %s in it", dir, manifest.ModuleFile)
	}
	if err != nil {
		return nil, fmt.Errorf("packing module %s: %w", dir, err)
	}
	cfg, err := json.Marshal(Config{Name: info.Name, Description: info.Description, Params: info.Params})
	if err != nil {
		return nil, err
	}
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	if err := layer.WriteDir(ctx, zw, dir, layer.WithSourceDateEpoch(time.Unix(0, 0))); err != nil {
		return nil, fmt.Errorf("packing module %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l := static.NewLayer(tgz.Bytes(), LayerMediaType)
	ld, err := partial.Descriptor(l)
	if err != nil {
		return nil, err
	}
	ld.Annotations = map[string]string{"org.opencontainers.image.title": info.Name + ".tar.gz"}
	cd, _, err := v1.SHA256(bytes.NewReader(cfg))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(cfg)), Digest: cd},
		Layers:        []v1.Descriptor{*ld},
		Annotations:   map[string]string{"org.opencontainers.image.title": info.Name},
	}
	if info.Description != "" {
		m.Annotations["org.opencontainers.image.description"] = info.Description
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{config: cfg, manifest: raw, layer: l})
}

// artifact is a module as go-containerregistry's image core: a config
// and one layer under an OCI manifest of kiln's media types.
type artifact struct {
	config, manifest []byte
	layer            v1.Layer
}

var _ partial.CompressedImageCore = (*artifact)(nil)

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, err := a.layer.Digest(); err == nil && d == h {
		return a.layer, nil
	}
	return nil, fmt.Errorf("module artifact: no blob %s", h)
}

// Push publishes the module directory dir at ref and returns the digest
// of its manifest, the digest use: oci://REPO@DIGEST pins.
func Push(ctx context.Context, rc *registry.Client, dir string, ref name.Reference) (v1.Hash, error) {
	img, err := Pack(ctx, dir)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := rc.Push(ctx, img, ref); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing module %s: %w", ref, err)
	}
	return img.Digest()
}
