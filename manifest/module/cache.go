package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/internal/atomicfile"
)

// Cache is the local cache of registry modules: ROOT/modules/sha256/HEX
// holds a module's files, HEX.json what is known of it (Entry).
type Cache struct {
	dir string
	rc  *registry.Client
}

// Open returns the module cache under the kiln root, which fetches
// through rc. Nothing is created until a module is pulled.
func Open(root string, rc *registry.Client) *Cache {
	return &Cache{dir: filepath.Join(root, "modules"), rc: rc}
}

// Entry is a module in the cache.
type Entry struct {
	Digest string    `json:"digest"` // of its OCI manifest
	Refs   []string  `json:"refs"`   // the references it was pulled by, sorted
	Config Config    `json:"config"`
	Pulled time.Time `json:"pulled"`
	Size   int64     `json:"size"` // of its layer, compressed
	// Dir is where its files are (not stored: it follows the root).
	Dir string `json:"-"`
}

func (c *Cache) paths(d v1.Hash) (dir, meta string) {
	base := filepath.Join(c.dir, d.Algorithm, d.Hex)
	return base, base + ".json"
}

// get returns the cached entry of d, or false.
func (c *Cache) get(d v1.Hash) (Entry, bool, error) {
	dir, meta := c.paths(d)
	b, err := os.ReadFile(meta)
	if errors.Is(err, os.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("reading the module cache: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, false, fmt.Errorf("reading the module cache: %s: %w", meta, err)
	}
	e.Dir = dir
	return e, true, nil
}

// put writes e's record atomically.
func (c *Cache) put(d v1.Hash, e Entry) error {
	_, meta := c.paths(d)
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(meta, b, 0o644, nil); err != nil {
		return fmt.Errorf("writing the module cache: %w", err)
	}
	return nil
}

// addRef records that e was had by ref.
func (c *Cache) addRef(d v1.Hash, e Entry, ref string) (Entry, error) {
	if slices.Contains(e.Refs, ref) {
		return e, nil
	}
	e.Refs = append(e.Refs, ref)
	sort.Strings(e.Refs)
	return e, c.put(d, e)
}

// Pull makes the module source names (oci://REF or REF) local: by
// digest, from the cache when it is there; by tag, the digest the
// registry has now (from the cache when its files are there). When the
// registry cannot be reached, a tag the cache has pulled before is used.
func (c *Cache) Pull(ctx context.Context, source string) (Entry, error) {
	ref, err := Reference(c.rc, source)
	if err != nil {
		return Entry{}, err
	}
	src := Source(ref)
	if dg, ok := ref.(name.Digest); ok {
		h, err := v1.NewHash(dg.DigestStr())
		if err != nil {
			return Entry{}, fmt.Errorf("module %s: %w", source, err)
		}
		if e, ok, err := c.get(h); ok || err != nil {
			if err != nil {
				return e, err
			}
			return c.addRef(h, e, src)
		}
		return c.fetch(ctx, ref, src)
	}
	desc, err := c.rc.Head(ctx, ref)
	if err != nil {
		if e, ok := c.byRef(src); ok {
			return e, nil
		}
		return Entry{}, fmt.Errorf("resolving module %s: %w", src, err)
	}
	if e, ok, err := c.get(desc.Digest); ok || err != nil {
		if err != nil {
			return e, err
		}
		return c.addRef(desc.Digest, e, src)
	}
	return c.fetch(ctx, ref, src)
}

// byRef returns the newest cached entry pulled by src.
func (c *Cache) byRef(src string) (Entry, bool) {
	es, err := c.List()
	if err != nil {
		return Entry{}, false
	}
	var found Entry
	ok := false
	for _, e := range es {
		if slices.Contains(e.Refs, src) && (!ok || e.Pulled.After(found.Pulled)) {
			found, ok = e, true
		}
	}
	return found, ok
}

// fetch pulls the module ref names into the cache.
func (c *Cache) fetch(ctx context.Context, ref name.Reference, src string) (Entry, error) {
	img, err := c.rc.Image(ctx, ref)
	if err != nil {
		return Entry{}, fmt.Errorf("pulling module %s: %w", src, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return Entry{}, fmt.Errorf("pulling module %s: %w", src, err)
	}
	if m.Config.MediaType != ConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType {
		return Entry{}, fmt.Errorf("pulling module %s: not a kiln module (its config is %s, want %s): publish modules with kiln module push", src, m.Config.MediaType, types.MediaType(ConfigMediaType))
	}
	d, err := img.Digest()
	if err != nil {
		return Entry{}, err
	}
	var cfg Config
	raw, err := img.RawConfigFile()
	if err != nil {
		return Entry{}, fmt.Errorf("pulling module %s: %w", src, err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return Entry{}, fmt.Errorf("pulling module %s: reading its config: %w", src, err)
	}
	ls, err := img.Layers()
	if err != nil {
		return Entry{}, fmt.Errorf("pulling module %s: %w", src, err)
	}
	dir, _ := c.paths(d)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Entry{}, fmt.Errorf("writing the module cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".pull-")
	if err != nil {
		return Entry{}, fmt.Errorf("writing the module cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	rc, err := ls[0].Uncompressed()
	if err != nil {
		return Entry{}, fmt.Errorf("pulling module %s: %w", src, err)
	}
	err = layer.Extract(ctx, rc, tmp)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Entry{}, fmt.Errorf("pulling module %s: extracting its files: %w", src, err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) && !isNotEmpty(err) {
		return Entry{}, fmt.Errorf("writing the module cache: %w", err)
	}
	e := Entry{Digest: d.String(), Refs: []string{src}, Config: cfg, Pulled: time.Now().UTC(), Size: m.Layers[0].Size, Dir: dir}
	if old, ok, _ := c.get(d); ok {
		e.Refs = old.Refs
		e, err = c.addRef(d, e, src)
		return e, err
	}
	return e, c.put(d, e)
}

// isNotEmpty reports a rename onto a directory another process made
// first (ENOTEMPTY): its files are the same, by digest.
func isNotEmpty(err error) bool {
	return strings.Contains(err.Error(), "directory not empty")
}

// List returns the cached modules, sorted by their first reference.
func (c *Cache) List() ([]Entry, error) {
	metas, err := filepath.Glob(filepath.Join(c.dir, "sha256", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, m := range metas {
		h, err := v1.NewHash("sha256:" + strings.TrimSuffix(filepath.Base(m), ".json"))
		if err != nil {
			continue
		}
		e, ok, err := c.get(h)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := strings.Join(out[i].Refs, ","), strings.Join(out[j].Refs, ",")
		return a < b || a == b && out[i].Digest < out[j].Digest
	})
	return out, nil
}
