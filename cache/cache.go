package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/internal/atomicfile"
)

// ErrNotFound is returned, wrapped with the key, when no record has the key.
var ErrNotFound = errors.New("cache record not found")

// ErrCorrupt is returned, wrapped with the key and the reason, when a record
// exists but cannot be used: see the package documentation.
var ErrCorrupt = errors.New("cache record is corrupt")

// Record is the result of a step: the layer it produced.
type Record struct {
	Key     Key           `json:"key"`
	Layer   v1.Descriptor `json:"layer"`  // the compressed layer: digest, size, media type
	DiffID  v1.Hash       `json:"diffID"` // the sha256 of the uncompressed layer
	Created time.Time     `json:"created"`
	Step    string        `json:"step,omitempty"` // the step's Name, for listings
	// DiffSize is the size of the uncompressed layer (its tar), when
	// known: a remote cache's hit with it is kept without fetching its
	// blob (store.PutLazyLayer).
	DiffSize int64 `json:"diffSize,omitempty"`
}

// Cache is the build cache of a store. Its methods may be called from
// several goroutines, and several Caches may share a store's root.
type Cache struct {
	store *store.Store
	dir   string // <root>/cache
}

// tmpPrefix starts the names of records being written, in the records
// directory: tmpPrefix + pid + "-" + random.
const tmpPrefix = ".tmp-"

// Open opens the cache of s, creating its directories, and removes the
// temp files left in them by processes that are no longer running.
func Open(ctx context.Context, s *store.Store) (*Cache, error) {
	c := &Cache{store: s, dir: filepath.Join(s.Root(), "cache")}
	for _, d := range []string{c.recordsDir(), c.locksDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open cache %s: %w", c.dir, err)
		}
	}
	if err := c.sweep(); err != nil {
		return nil, fmt.Errorf("open cache %s: %w", c.dir, err)
	}
	return c, nil
}

func (c *Cache) recordsDir() string { return filepath.Join(c.dir, "records") }
func (c *Cache) locksDir() string   { return filepath.Join(c.dir, "locks") }

func (c *Cache) recordPath(k Key) string {
	h := k.String()
	return filepath.Join(c.recordsDir(), h[:2], h+".json")
}

// blobPath is where the store keeps the blob d.
func (c *Cache) blobPath(d v1.Hash) string { return c.store.BlobPath(d) }

// refName is the name of the store reference that keeps k's blob.
func refName(k Key) string { return "cache/" + k.String() }

// sweep removes the temp files of the records directory whose process is
// gone. A pid counts as running while /proc/<pid> exists; a reused pid only
// delays the removal.
func (c *Cache) sweep() error {
	entries, err := os.ReadDir(c.recordsDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tmpPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidText); err == nil && pid > 0 {
			if _, err := os.Stat(filepath.Join("/proc", pidText)); !errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		p := filepath.Join(c.recordsDir(), e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sweep %s: %w", p, err)
		}
	}
	return nil
}

// Get returns the record of k and its layer, read from the store's blob.
// It fails with an error wrapping ErrNotFound when there is no record, and
// with one wrapping ErrCorrupt when the record cannot be used (see the
// package documentation). The layer's streams verify the blob's digest as
// they reach its end. A hit refreshes the record's modification time, which
// so tells when the record was last used.
func (c *Cache) Get(ctx context.Context, k Key) (Record, v1.Layer, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, nil, fmt.Errorf("cache record %s: %w", k, err)
	}
	p := c.recordPath(k)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, nil, fmt.Errorf("cache record %s: %w", k, ErrNotFound)
	}
	if err != nil {
		return Record{}, nil, fmt.Errorf("read cache record %s: %w", p, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, nil, fmt.Errorf("read cache record %s: %w: %w", p, ErrCorrupt, err)
	}
	if r.Key != k {
		return Record{}, nil, fmt.Errorf("read cache record %s: %w: it holds key %s", p, ErrCorrupt, r.Key)
	}
	if err := checkDigest(r.Layer.Digest); err != nil {
		return Record{}, nil, fmt.Errorf("read cache record %s: %w: layer %w", p, ErrCorrupt, err)
	}
	if err := checkDigest(r.DiffID); err != nil {
		return Record{}, nil, fmt.Errorf("read cache record %s: %w: diffID %w", p, ErrCorrupt, err)
	}
	if r.Layer.MediaType == "" {
		return Record{}, nil, fmt.Errorf("read cache record %s: %w: the layer has no media type", p, ErrCorrupt)
	}
	bp := c.blobPath(r.Layer.Digest)
	fi, err := os.Stat(bp)
	if err != nil {
		// A remote cache's layer, fetched when something reads it, or
		// one kept as its layer directory only, which must be whole.
		if lazy, lerr := c.store.CheckLazy(ctx, r.Layer.Digest); lazy {
			fi, err = nil, lerr
		}
	}
	if err != nil {
		return Record{}, nil, fmt.Errorf("cache record %s: %w: layer blob %s: %w", k, ErrCorrupt, r.Layer.Digest, err)
	}
	if fi != nil && fi.Size() != r.Layer.Size {
		return Record{}, nil, fmt.Errorf("cache record %s: %w: layer blob %s has %d bytes, want %d", k, ErrCorrupt, r.Layer.Digest, fi.Size(), r.Layer.Size)
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // only a hint for pruning: a read-only root still serves hits
	return r, &blobLayer{Layer: c.store.BlobLayer(r.Layer, r.DiffID), desc: r.Layer}, nil
}

// checkDigest reports whether h is a well-formed sha256.
func checkDigest(h v1.Hash) error {
	if h == (v1.Hash{}) {
		return errors.New("digest is missing")
	}
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return fmt.Errorf("digest %q is not a sha256", h)
	}
	if _, err := hex.DecodeString(h.Hex); err != nil {
		return fmt.Errorf("digest %q is not a sha256", h)
	}
	return nil
}

// Put records r. The blob r.Layer.Digest must already be in the store, with
// r.Layer.Size bytes. Put refreshes the blob's modification time, refers to
// it (and to the unpacked layer r.DiffID) from the store reference
// "cache/<key>", and then writes the record atomically, replacing any record
// of the key. A zero r.Created is set to now.
func (c *Cache) Put(ctx context.Context, r Record) error {
	if err := checkDigest(r.Layer.Digest); err != nil {
		return fmt.Errorf("put cache record %s: layer %w", r.Key, err)
	}
	if err := checkDigest(r.DiffID); err != nil {
		return fmt.Errorf("put cache record %s: diffID %w", r.Key, err)
	}
	if r.Layer.MediaType == "" {
		return fmt.Errorf("put cache record %s: the layer has no media type", r.Key)
	}
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	bp := c.blobPath(r.Layer.Digest)
	if fi, err := os.Stat(bp); err == nil {
		if fi.Size() != r.Layer.Size {
			return fmt.Errorf("put cache record %s: layer blob %s has %d bytes, want %d", r.Key, r.Layer.Digest, fi.Size(), r.Layer.Size)
		}
		now := time.Now()
		if err := os.Chtimes(bp, now, now); err != nil {
			return fmt.Errorf("put cache record %s: %w", r.Key, err)
		}
	} else if !c.store.IsLazy(r.Layer.Digest) {
		return fmt.Errorf("put cache record %s: layer blob %s is not in the store: %w", r.Key, r.Layer.Digest, err)
	}
	if err := c.store.Ref(ctx, refName(r.Key), []v1.Hash{r.Layer.Digest}, []v1.Hash{r.DiffID}); err != nil {
		return fmt.Errorf("put cache record %s: %w", r.Key, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put cache record %s: %w", r.Key, err)
	}
	if err := c.writeRecord(c.recordPath(r.Key), append(b, '\n')); err != nil {
		return fmt.Errorf("put cache record %s: %w", r.Key, err)
	}
	return nil
}

// writeRecord writes data to a temp file in the records directory (named
// for the sweep), syncs it and renames it to p, then syncs p's directory.
func (c *Cache) writeRecord(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, data, 0o600, func() (*os.File, error) {
		return os.CreateTemp(c.recordsDir(), tmpPrefix+strconv.Itoa(os.Getpid())+"-*")
	})
}

// Delete removes the record of k, then the store reference that kept its
// blob. A missing record is not an error. The blob itself stays until a
// collection finds nothing else using it.
func (c *Cache) Delete(ctx context.Context, k Key) error {
	p := c.recordPath(k)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete cache record %s: %w", k, err)
	}
	if err := c.store.Unref(ctx, refName(k)); err != nil {
		return fmt.Errorf("delete cache record %s: %w", k, err)
	}
	return nil
}

// Verify reads the blob of k's record in full and checks both its digest
// and, decompressing it, its diffID (a layer kept as its directory,
// store.CommitLayerDir, is read as its tar written again from it); a
// registry's layer not fetched (store.PutLazyLayer) is checked when it
// is. Errors wrap ErrNotFound or ErrCorrupt as Get's do.
func (c *Cache) Verify(ctx context.Context, k Key) error {
	r, l, err := c.Get(ctx, k)
	if err != nil {
		return err
	}
	if c.store.IsUnfetched(r.Layer.Digest) {
		return nil // a remote cache's layer, not fetched: checked when it is
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("verify cache record %s: %w", k, err)
	}
	defer rc.Close()
	h := sha256.New()
	// Reading to the end checks the blob's digest too.
	if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: rc}); err != nil {
		return fmt.Errorf("verify cache record %s: %w", k, err)
	}
	if got := (v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}); got != r.DiffID {
		return fmt.Errorf("verify cache record %s: %w: layer %s decompresses to diffID %s, want %s", k, ErrCorrupt, r.Layer.Digest, got, r.DiffID)
	}
	return nil
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
