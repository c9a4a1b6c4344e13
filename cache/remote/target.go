package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/internal/ocilayout"
)

// errNoArtifact is returned, wrapped, when a target has no artifact under
// a tag.
var errNoArtifact = errors.New("no cache artifact")

// Target is where cache artifacts live: a registry repository and tag
// ([Registry]) or an OCI image layout directory and tag ([Layout]).
type Target interface {
	// String names the target for messages: "registry://host/repo:tag" or
	// "oci-layout:DIR:tag".
	String() string
	// tag is the main tag.
	tag() string
	// tags lists every tag of the repository or layout.
	tags(ctx context.Context) ([]string, error)
	// config reads the config of the artifact tagged tag; it fails with
	// errNoArtifact when there is none.
	config(ctx context.Context, tag string) ([]byte, error)
	// blob opens the blob d.
	blob(ctx context.Context, d v1.Hash) (io.ReadCloser, error)
	// exists reports whether the target has the blob d.
	exists(ctx context.Context, d v1.Hash) (bool, error)
	// write writes the artifact under tag, with the blobs it lacks.
	write(ctx context.Context, tag string, img v1.Image) error
}

// Registry returns the target ref in a registry, reached with opts
// (credentials, transport, jobs: package registry's Client gives them).
func Registry(ref name.Tag, opts ...remote.Option) Target {
	return &registryTarget{ref: ref, opts: opts}
}

type registryTarget struct {
	ref  name.Tag
	opts []remote.Option

	// puller makes the reads share one connection setup (ping, token):
	// a build reads the tag list, the main artifact, then each hit's
	// blob, and each read set up its own, a round trip to the registry
	// on the way to the blob.
	pullerOnce sync.Once
	puller     *remote.Puller
}

func (t *registryTarget) String() string { return "registry://" + t.ref.String() }
func (t *registryTarget) tag() string    { return t.ref.TagStr() }

// describe makes err, from the registry, one line that names it and,
// for the usual causes (no credentials, TLS), says what to do.
func (t *registryTarget) describe(err error) error {
	return registry.Describe(t.ref.RegistryStr(), err)
}

func (t *registryTarget) with(ctx context.Context) []remote.Option {
	return append(append([]remote.Option(nil), t.opts...), remote.WithContext(ctx))
}

// read returns the options of a read: with's, and the target's Puller
// when one can be made (otherwise each read sets itself up).
func (t *registryTarget) read(ctx context.Context) []remote.Option {
	t.pullerOnce.Do(func() { t.puller, _ = remote.NewPuller(t.opts...) })
	opts := t.with(ctx)
	if t.puller != nil {
		opts = append(opts, remote.Reuse(t.puller))
	}
	return opts
}

func (t *registryTarget) tags(ctx context.Context) ([]string, error) {
	tags, err := remote.List(t.ref.Context(), t.read(ctx)...)
	if isNotFound(err) {
		return nil, nil // a repository that does not exist yet
	}
	return tags, t.describe(err)
}

func (t *registryTarget) config(ctx context.Context, tag string) ([]byte, error) {
	img, err := remote.Image(t.ref.Context().Tag(tag), t.read(ctx)...)
	if isNotFound(err) {
		return nil, fmt.Errorf("%s: %w", tag, errNoArtifact)
	}
	if err != nil {
		return nil, t.describe(err)
	}
	return configOf(img)
}

func (t *registryTarget) blob(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	l, err := remote.Layer(t.ref.Context().Digest(d.String()), t.read(ctx)...)
	if err != nil {
		return nil, t.describe(err)
	}
	rc, err := l.Compressed()
	return rc, t.describe(err)
}

func (t *registryTarget) exists(ctx context.Context, d v1.Hash) (bool, error) {
	l, err := remote.Layer(t.ref.Context().Digest(d.String()), t.read(ctx)...)
	if err != nil {
		return false, t.describe(err)
	}
	ok, err := partial.Exists(l)
	return ok, t.describe(err)
}

func (t *registryTarget) write(ctx context.Context, tag string, img v1.Image) error {
	return t.describe(remote.Write(t.ref.Context().Tag(tag), img, t.with(ctx)...))
}

// isNotFound reports whether err is a registry's 404 (or its
// NAME_UNKNOWN, MANIFEST_UNKNOWN).
func isNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.NameUnknownErrorCode || d.Code == transport.ManifestUnknownErrorCode {
			return true
		}
	}
	return false
}

// configOf checks that img is a cache artifact and returns its config.
func configOf(img v1.Image) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.Config.MediaType != ConfigMediaType {
		return nil, fmt.Errorf("not a kiln cache artifact: its config has media type %q, want %q", m.Config.MediaType, ConfigMediaType)
	}
	return img.RawConfigFile()
}

// Layout returns the target tag in the OCI image layout directory dir,
// which writing creates.
func Layout(dir, tag string) Target { return &layoutTarget{dir: dir, tagName: tag} }

type layoutTarget struct {
	dir, tagName string
}

func (t *layoutTarget) String() string { return "oci-layout:" + t.dir + ":" + t.tagName }
func (t *layoutTarget) tag() string    { return t.tagName }

// refName is the annotation that tags an entry of index.json.
const refName = "org.opencontainers.image.ref.name"

// index reads the layout's index.json; a directory without one has no
// artifacts.
func (t *layoutTarget) index() (layout.Path, *v1.IndexManifest, error) {
	p, err := layout.FromPath(t.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", &v1.IndexManifest{}, nil
		}
		return "", nil, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return "", nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return "", nil, err
	}
	return p, im, nil
}

func (t *layoutTarget) tags(ctx context.Context) ([]string, error) {
	_, im, err := t.index()
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, d := range im.Manifests {
		if n := d.Annotations[refName]; n != "" {
			tags = append(tags, n)
		}
	}
	return tags, nil
}

func (t *layoutTarget) config(ctx context.Context, tag string) ([]byte, error) {
	p, im, err := t.index()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Annotations[refName] == tag {
			img, err := p.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			return configOf(img)
		}
	}
	return nil, fmt.Errorf("%s: %w", tag, errNoArtifact)
}

func (t *layoutTarget) blob(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	return layout.Path(t.dir).Blob(d)
}

func (t *layoutTarget) exists(ctx context.Context, d v1.Hash) (bool, error) {
	_, err := os.Stat(filepath.Join(t.dir, "blobs", d.Algorithm, d.Hex))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (t *layoutTarget) write(ctx context.Context, tag string, img v1.Image) error {
	l, err := ocilayout.Lock(ctx, t.dir)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Put(ctx, img, tag)
}

// fragmentPrefix starts the tags of the fragments of main tag tag.
func fragmentPrefix(tag string) string { return tag + "-kc-" }

// fragments returns the tags among tags that are fragments of tag.
func fragments(tag string, tags []string) []string {
	var out []string
	for _, t := range tags {
		if strings.HasPrefix(t, fragmentPrefix(tag)) {
			out = append(out, t)
		}
	}
	return out
}
