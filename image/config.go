package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Config is an image's config: go-containerregistry's v1.Config, and what
// of the config file it has no field for or keeps apart.
type Config struct {
	v1.Config
	// Author is the config file's author (a Dockerfile's MAINTAINER).
	Author string
	// StartInterval is Healthcheck's time between checks during its start
	// period (HEALTHCHECK --start-interval), which v1.HealthConfig has no
	// field for. It is written only with a Healthcheck.
	StartInterval time.Duration
}

// Clone returns a deep copy of c.
func (c Config) Clone() Config {
	c.Config = *c.Config.DeepCopy()
	return c
}

// rawHealth is the part of a raw config file that v1.ConfigFile drops.
type rawHealth struct {
	Config struct {
		Healthcheck *struct {
			StartInterval time.Duration `json:",omitempty"`
		} `json:",omitempty"`
	} `json:"config"`
}

// ConfigOf returns the config of img.
func ConfigOf(img v1.Image) (Config, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return Config{}, fmt.Errorf("reading image config: %w", err)
	}
	c := Config{Config: *cf.Config.DeepCopy(), Author: cf.Author}
	if c.Healthcheck != nil {
		raw, err := img.RawConfigFile()
		if err != nil {
			return Config{}, fmt.Errorf("reading image config: %w", err)
		}
		var h rawHealth
		if json.Unmarshal(raw, &h) == nil && h.Config.Healthcheck != nil {
			c.StartInterval = h.Config.Healthcheck.StartInterval
		}
	}
	return c, nil
}

// withStartInterval returns img with StartInterval set in its config's
// healthcheck.
func withStartInterval(img v1.Image, d time.Duration) (v1.Image, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(doc["config"], &cfg); err != nil {
		return nil, err
	}
	var hc map[string]any
	if err := json.Unmarshal(cfg["Healthcheck"], &hc); err != nil {
		return nil, err
	}
	hc["StartInterval"] = d
	if cfg["Healthcheck"], err = json.Marshal(hc); err != nil {
		return nil, err
	}
	if doc["config"], err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	if raw, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	if m.Config.Digest, m.Config.Size, err = v1.SHA256(bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &rawConfigImage{Image: img, raw: raw, manifest: m, rawManifest: rawManifest}, nil
}

// rawConfigImage is an image with another raw config file: its manifest
// names the new config; its layers are the image's.
type rawConfigImage struct {
	v1.Image
	raw, rawManifest []byte
	manifest         *v1.Manifest
}

func (i *rawConfigImage) RawConfigFile() ([]byte, error) { return i.raw, nil }
func (i *rawConfigImage) ConfigName() (v1.Hash, error)   { return i.manifest.Config.Digest, nil }
func (i *rawConfigImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.raw))
}
func (i *rawConfigImage) Manifest() (*v1.Manifest, error) { return i.manifest.DeepCopy(), nil }
func (i *rawConfigImage) RawManifest() ([]byte, error)    { return i.rawManifest, nil }
func (i *rawConfigImage) Size() (int64, error)            { return int64(len(i.rawManifest)), nil }
func (i *rawConfigImage) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(i.rawManifest))
	return h, err
}
