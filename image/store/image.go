package store

import (
	"bytes"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// storeImage is an image of the store. Its manifest and config are read (and
// checked against their digests) when it is made; its layers are storeLayers.
type storeImage struct {
	desc        v1.Descriptor
	rawManifest []byte
	manifest    *v1.Manifest
	rawConfig   []byte
	config      *v1.ConfigFile
	layers      []*storeLayer
}

var _ v1.Image = (*storeImage)(nil)

// readImage reads the image that desc describes from the blobs directory.
func (s *Store) readImage(desc v1.Descriptor) (*storeImage, error) {
	return readImageFrom(blobDir{path: s.BlobPath, store: s}, desc)
}

// blobDir is where readImageFrom finds blobs: the store's blobs directory
// or an OCI layout's (at, for its errors, "oci-layout DIR").
type blobDir struct {
	path  func(v1.Hash) string
	at    string
	store *Store // the store whose blobs these are, or nil
}

// readImageFrom reads the image that desc describes from the blobs of
// dir, checking its manifest and config against their digests; its layers
// check their blobs as they are read.
func readImageFrom(dir blobDir, desc v1.Descriptor) (*storeImage, error) {
	switch desc.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return nil, fmt.Errorf("read image %s: media type %s is not an image manifest", desc.Digest, desc.MediaType)
	}
	img := &storeImage{desc: desc}
	var err error
	if img.rawManifest, err = dir.readBlob("manifest", desc.Digest); err != nil {
		return nil, fmt.Errorf("read image %s: %w", desc.Digest, err)
	}
	if img.manifest, err = v1.ParseManifest(bytes.NewReader(img.rawManifest)); err != nil {
		return nil, fmt.Errorf("read image %s: manifest: %w", desc.Digest, err)
	}
	if img.rawConfig, err = dir.readBlob("config", img.manifest.Config.Digest); err != nil {
		return nil, fmt.Errorf("read image %s: %w", desc.Digest, err)
	}
	if img.config, err = v1.ParseConfigFile(bytes.NewReader(img.rawConfig)); err != nil {
		return nil, fmt.Errorf("read image %s: config: %w", desc.Digest, err)
	}
	if len(img.config.RootFS.DiffIDs) != len(img.manifest.Layers) {
		return nil, fmt.Errorf("read image %s: config lists %d diffIDs for %d layers", desc.Digest, len(img.config.RootFS.DiffIDs), len(img.manifest.Layers))
	}
	for i, ld := range img.manifest.Layers {
		img.layers = append(img.layers, &storeLayer{path: dir.path(ld.Digest), desc: ld, diffID: img.config.RootFS.DiffIDs[i], at: dir.at, store: dir.store})
	}
	return img, nil
}

// readBlob reads the blob of s, a small one, and checks its digest.
func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	return blobDir{path: s.BlobPath}.readBlob("blob", h)
}

// readBlob reads a small blob, the what (manifest, config) of an image,
// and checks its digest.
func (d blobDir) readBlob(what string, h v1.Hash) ([]byte, error) {
	if h.Algorithm != "sha256" {
		return nil, fmt.Errorf("%s %s: not a sha256 digest", what, h)
	}
	b, err := os.ReadFile(d.path(h))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, h, err)
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(b)); got != h {
		return nil, &CorruptBlobError{What: what, Digest: h, Got: got, Size: -1, At: d.at}
	}
	return b, nil
}

func (i *storeImage) Layers() ([]v1.Layer, error) {
	ls := make([]v1.Layer, len(i.layers))
	for n, l := range i.layers {
		ls[n] = l
	}
	return ls, nil
}

func (i *storeImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *storeImage) Size() (int64, error)                { return int64(len(i.rawManifest)), nil }
func (i *storeImage) ConfigName() (v1.Hash, error)        { return i.manifest.Config.Digest, nil }
func (i *storeImage) Digest() (v1.Hash, error)            { return i.desc.Digest, nil }
func (i *storeImage) RawManifest() ([]byte, error)        { return i.rawManifest, nil }
func (i *storeImage) RawConfigFile() ([]byte, error)      { return i.rawConfig, nil }

// ConfigFile and Manifest return copies, so that callers cannot change the image.
func (i *storeImage) ConfigFile() (*v1.ConfigFile, error) { return partial.ConfigFile(i) }
func (i *storeImage) Manifest() (*v1.Manifest, error)     { return partial.Manifest(i) }

func (i *storeImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.desc.Digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("image %s has no layer %s", i.desc.Digest, h)
}

func (i *storeImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("image %s has no layer with diffID %s", i.desc.Digest, h)
}
