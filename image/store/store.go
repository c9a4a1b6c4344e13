package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/flock"
	"github.com/kiln-build/kiln/internal/topdir"
)

// ErrNotFound is returned, wrapped with the name, when no image has the name
// or digest asked for.
var ErrNotFound = errors.New("image not found")

// GCGrace is how old an unreferenced blob (by modification time) or layer
// directory (by change time) must be before a collection removes it; see the
// package documentation.
const GCGrace = time.Minute

// refNameAnnotation is the annotation of an index.json entry that names it.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Store is a local image store under a root directory. Its methods may be
// called from several goroutines, and several Stores (in one or more
// processes) may share a root.
type Store struct {
	root string
	// checked holds the diffIDs (v1.Hash → true) of the layer
	// directories this Store has checked or made, which it hands out
	// without checking them again.
	checked sync.Map
	// epoch is the current layer check epoch (string); see layercheck.go.
	epoch atomic.Value
	// boot is the kernel's id of this boot ("" when it cannot be read).
	boot string
	// compressing holds the compressions under way in this Store, by
	// "<diffID hex>-<compression>" (*compression); see compressedLayer.
	compressing sync.Map
	bg          background // what Precompress left running; see Close
	warn        func(msg string)
	remote      RemoteLayers // see WithRemoteLayers; nil: none
}

// Option configures a Store.
type Option func(*options) error

type options struct {
	warn   func(string)
	remote RemoteLayers
}

// WithWarnings sets where the Store says what it mended on its own: a
// layer directory that changed since it was made, removed and made again
// from its blob. The default is to say nothing.
func WithWarnings(fn func(msg string)) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("store warnings: nil function")
		}
		o.warn = fn
		return nil
	}
}

// Open opens the store under root, creating its directories and an empty OCI
// layout if they do not exist, and removes the entries of tmp/ left behind by
// processes that are no longer running.
func Open(ctx context.Context, root string, opts ...Option) (*Store, error) {
	o := options{warn: func(string) {}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	s := &Store{root: abs, warn: o.warn, remote: o.remote}
	s.bg.closing, s.bg.close = context.WithCancel(context.Background())
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{s.root, 0o700},
		{s.tmpDir(), 0o700},
		{s.layersDir(), 0o700},
		{s.ociDir(), 0o755},
		{s.blobsDir(), 0o755},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	// A hint: each layer's tree, and each unpack's, in a block group of
	// its own (see package topdir).
	topdir.Mark(s.layersDir())
	topdir.Mark(s.tmpDir())
	if err := s.initLayout(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	swept, err := s.sweepTmp()
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	s.boot = bootID()
	if err := s.loadEpoch(swept); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	return s, nil
}

// Root returns the store's root directory, as an absolute path.
func (s *Store) Root() string { return s.root }

func (s *Store) ociDir() string    { return filepath.Join(s.root, "oci") }
func (s *Store) blobsDir() string  { return filepath.Join(s.root, "oci", "blobs", "sha256") }
func (s *Store) layersDir() string { return filepath.Join(s.root, "layers") }
func (s *Store) tmpDir() string    { return filepath.Join(s.root, "tmp") }
func (s *Store) indexPath() string { return filepath.Join(s.root, "oci", "index.json") }

// initLayout writes oci-layout and an empty index.json unless they exist.
func (s *Store) initLayout(ctx context.Context) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	files := []struct{ name, data string }{
		{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`},
		{"index.json", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`},
	}
	for _, f := range files {
		p := filepath.Join(s.ociDir(), f.name)
		if _, err := os.Stat(p); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := s.writeFileAtomic(p, []byte(f.data+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tempName returns a new, unused name in tmp/ of the form <pid>-<random>.
func (s *Store) tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return filepath.Join(s.tmpDir(), strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:]))
}

// createTemp creates a new file in tmp/.
func (s *Store) createTemp() (*os.File, error) {
	return os.CreateTemp(s.tmpDir(), strconv.Itoa(os.Getpid())+"-*")
}

// CreateTemp creates a new file in the store's tmp/, for content to be
// renamed into the root once written: one a crash leaves behind is
// removed by the next Open.
func (s *Store) CreateTemp() (*os.File, error) { return s.createTemp() }

// sweepTmp removes the entries of tmp/ named after a process that is not
// running, and reports whether there were any (a kiln process died
// without cleaning up). A pid is taken as running when /proc/<pid> exists;
// a reused pid only delays the removal until a later Open.
func (s *Store) sweepTmp() (bool, error) {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return false, err
	}
	swept := false
	for _, e := range entries {
		pidText, _, ok := strings.Cut(e.Name(), "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", pidText)); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return swept, fmt.Errorf("sweep %s: %w", s.tmpDir(), err)
		}
		swept = true
	}
	return swept, nil
}

// lock takes the exclusive flock on oci/index.lock, waiting until it is free
// or ctx is done. Each call opens the lock file anew, so that goroutines and
// Stores of one process exclude each other too (flock locks belong to an
// open file description).
func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	p := filepath.Join(s.ociDir(), "index.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if err := flock.Exclusive(ctx, f, 50*time.Millisecond); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

// writeFileAtomic writes data to a temp file of the store, syncs it and
// renames it to p.
func (s *Store) writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(p, data, mode, s.createTemp)
}
