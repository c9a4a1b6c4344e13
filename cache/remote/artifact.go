package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
)

// The media types of a cache artifact.
const (
	// ArtifactType is the artifactType of a cache artifact's manifest.
	ArtifactType = "application/vnd.kiln.cache.v1"
	// ConfigMediaType is the media type of its config: the records.
	ConfigMediaType types.MediaType = "application/vnd.kiln.cache.config.v1+json"
)

// configVersion is the version of the config's format that kiln writes
// and reads.
const configVersion = 1

// Mount is the content of a cache mount (RUN --mount=type=cache,id=ID)
// as a layer.
type Mount struct {
	ID     string        `json:"id"`
	Layer  v1.Descriptor `json:"layer"`
	DiffID v1.Hash       `json:"diffID"`
	// Mode, UID and GID are the mount directory's own (the layer holds
	// only what is in it). Mode keeps os.ModeSetgid and os.ModeSticky.
	Mode uint32 `json:"mode"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

// Config is a cache artifact's config: see the package documentation.
type Config struct {
	Version int            `json:"version"`
	Records []cache.Record `json:"records"`
	Mounts  []Mount        `json:"mounts,omitempty"`
	Merged  []string       `json:"merged,omitempty"`
}

// rawConfig is Config as read: each record is parsed on its own, so that
// one bad record costs only itself.
type rawConfig struct {
	Version int               `json:"version"`
	Records []json.RawMessage `json:"records"`
	Mounts  []json.RawMessage `json:"mounts"`
	Merged  []string          `json:"merged"`
}

// parseConfig reads a config. It fails only when the whole does not
// parse; a record or mount that does not is left out and reported in
// bad, one line each.
func parseConfig(b []byte) (cfg Config, bad []string, err error) {
	var raw rawConfig
	if err := json.Unmarshal(b, &raw); err != nil {
		return Config{}, nil, fmt.Errorf("the config does not parse: %w", err)
	}
	if raw.Version != configVersion {
		return Config{}, nil, fmt.Errorf("the config has version %d; this kiln reads version %d", raw.Version, configVersion)
	}
	cfg = Config{Version: raw.Version, Merged: raw.Merged}
	cfg.Records = parseEach(raw.Records, checkRecord, func(r cache.Record) string { return "key " + r.Key.String() }, "record", &bad)
	cfg.Mounts = parseEach(raw.Mounts, checkMount, func(m Mount) string { return fmt.Sprintf("%q", m.ID) }, "mount", &bad)
	return cfg, bad, nil
}

// parseEach parses each of raws as a T and checks it, leaving out (and
// adding a line to bad for) those that fail.
func parseEach[T any](raws []json.RawMessage, check func(T) error, name func(T) string, what string, bad *[]string) []T {
	var out []T
	for i, m := range raws {
		var v T
		if err := json.Unmarshal(m, &v); err != nil {
			*bad = append(*bad, fmt.Sprintf("%s %d does not parse: %v", what, i, err))
			continue
		}
		if err := check(v); err != nil {
			*bad = append(*bad, fmt.Sprintf("%s %d (%s): %v", what, i, name(v), err))
			continue
		}
		out = append(out, v)
	}
	return out
}

func checkRecord(r cache.Record) error {
	if r.Key == (cache.Key{}) {
		return errors.New("no key")
	}
	return checkLayer(r.Layer, r.DiffID)
}

func checkMount(m Mount) error {
	if m.ID == "" || m.ID == "." || m.ID == ".." {
		return fmt.Errorf("id %q is not a cache mount's", m.ID)
	}
	return checkLayer(m.Layer, m.DiffID)
}

func checkLayer(d v1.Descriptor, diffID v1.Hash) error {
	for _, h := range []v1.Hash{d.Digest, diffID} {
		if h.Algorithm != "sha256" || len(h.Hex) != 64 {
			return fmt.Errorf("digest %q is not a sha256", h)
		}
	}
	if d.Size <= 0 {
		return fmt.Errorf("layer %s has size %d", d.Digest, d.Size)
	}
	if d.MediaType == "" {
		return fmt.Errorf("layer %s has no media type", d.Digest)
	}
	return nil
}

// blob is a layer of an artifact: one blob that open reads.
type blob struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
}

func (b *blob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *blob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *blob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *blob) Compressed() (io.ReadCloser, error)  { return b.open() }

var _ partial.CompressedLayer = (*blob)(nil)

// artifact is a cache artifact to write, as a v1.Image (through
// partial.CompressedToImage) that go-containerregistry's remote and
// layout packages can write.
type artifact struct {
	rawConfig   []byte
	rawManifest []byte
	blobs       map[v1.Hash]*blob
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.rawConfig, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.rawManifest, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if b, ok := a.blobs[h]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("cache artifact has no blob %s", h)
}

// manifest is an OCI image manifest with an artifactType, which
// v1.Manifest of this go-containerregistry version lacks.
type manifest struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// newArtifact makes the artifact of cfg, whose layers open reads.
// Records and mounts are sorted (by key, by id) so that equal content
// gives an equal digest.
func newArtifact(cfg Config, open func(v1.Hash) func() (io.ReadCloser, error)) (*artifact, error) {
	cfg.Version = configVersion
	sort.Slice(cfg.Records, func(i, j int) bool { return cfg.Records[i].Key.String() < cfg.Records[j].Key.String() })
	sort.Slice(cfg.Mounts, func(i, j int) bool { return cfg.Mounts[i].ID < cfg.Mounts[j].ID })
	sort.Strings(cfg.Merged)
	if cfg.Records == nil {
		cfg.Records = []cache.Record{}
	}
	rawConfig, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cd, _, err := v1.SHA256(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, err
	}
	a := &artifact{rawConfig: rawConfig, blobs: map[v1.Hash]*blob{}}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Digest: cd, Size: int64(len(rawConfig))},
		Layers:        []v1.Descriptor{},
	}
	add := func(d v1.Descriptor) {
		if _, ok := a.blobs[d.Digest]; ok {
			return
		}
		a.blobs[d.Digest] = &blob{desc: d, open: open(d.Digest)}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
	}
	for _, r := range cfg.Records {
		add(r.Layer)
	}
	for _, mt := range cfg.Mounts {
		add(mt.Layer)
	}
	if a.rawManifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return a, nil
}

// image returns a as a v1.Image.
func (a *artifact) image() (v1.Image, error) { return partial.CompressedToImage(a) }

// configDigest returns the digest of a's config.
func (a *artifact) configDigest() v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(a.rawConfig)) // reading bytes does not fail
	return h
}
