package remotecache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/store"
)

// readJobs is how many fragments are read at once.
const readJobs = 8

// load reads what t holds: its main tag merged with every fragment that
// the main tag does not list (except those in skip). Bad data is passed
// to warn and left out; load fails only when t cannot be listed.
func load(ctx context.Context, t Target, skip []string, warn func(string)) (Config, error) {
	tags, err := t.tags(ctx)
	if err != nil {
		return Config{}, fmt.Errorf("listing the tags of %s: %w", t, err)
	}
	var main Config
	if raw, err := t.config(ctx, t.tag()); err == nil {
		var bad []string
		if main, bad, err = parseConfig(raw); err != nil {
			warn(fmt.Sprintf("%s: %v; ignoring it", t, err))
		}
		for _, b := range bad {
			warn(fmt.Sprintf("%s: %s; ignoring it", t, b))
		}
	} else if !errors.Is(err, errNoArtifact) {
		if ctx.Err() != nil {
			return Config{}, ctx.Err()
		}
		warn(fmt.Sprintf("%s: reading the cache artifact: %v; ignoring it", t, err))
	}
	var todo []string
	for _, f := range fragments(t.tag(), tags) {
		if !slices.Contains(main.Merged, f) && !slices.Contains(skip, f) {
			todo = append(todo, f)
		}
	}
	sort.Strings(todo)
	frags := make([]Config, len(todo))
	read := make([]bool, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, readJobs)
	for i, tag := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			raw, err := t.config(ctx, tag)
			if err != nil {
				if ctx.Err() == nil {
					warn(fmt.Sprintf("%s: reading fragment %s: %v; ignoring it", t, tag, err))
				}
				return
			}
			read[i] = true // read, if not usable: merging it again would not help
			cfg, bad, err := parseConfig(raw)
			if err != nil {
				warn(fmt.Sprintf("%s: fragment %s: %v; ignoring it", t, tag, err))
				return
			}
			for _, b := range bad {
				warn(fmt.Sprintf("%s: fragment %s: %s; ignoring it", t, tag, b))
			}
			frags[i] = cfg
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Config{}, err
	}
	out := main
	for i, f := range frags {
		out = merge(out, f)
		if read[i] {
			out.Merged = append(out.Merged, todo[i])
		}
	}
	return out, nil
}

// merge returns a with the records and mounts of b that a lacks, and the
// merged tags of both.
func merge(a, b Config) Config {
	out := Config{Version: configVersion}
	keys := map[cache.Key]bool{}
	ids := map[string]bool{}
	for _, c := range []Config{a, b} {
		for _, r := range c.Records {
			if !keys[r.Key] {
				keys[r.Key] = true
				out.Records = append(out.Records, r)
			}
		}
		for _, m := range c.Mounts {
			if !ids[m.ID] {
				ids[m.ID] = true
				out.Mounts = append(out.Mounts, m)
			}
		}
		for _, t := range c.Merged {
			if !slices.Contains(out.Merged, t) {
				out.Merged = append(out.Merged, t)
			}
		}
	}
	return out
}

// Source looks up cache keys in targets, for a build: see the package
// documentation. Its methods may be called from several goroutines.
type Source struct {
	targets []Target
	store   *store.Store
	cache   *cache.Cache
	warn    func(string)

	once   sync.Once
	hits   map[cache.Key]hit
	mounts []mountHit
}

// hit is where a key's record was found.
type hit struct {
	rec    cache.Record
	target Target
}

// NewSource returns a Source that looks keys up in targets (the first
// target that has a key wins), fetching what it finds into s and c, and
// passing its warnings (one line each, without a prefix) to warn.
func NewSource(s *store.Store, c *cache.Cache, warn func(string), targets ...Target) *Source {
	return &Source{targets: targets, store: s, cache: c, warn: warn}
}

// load reads every target, once.
func (src *Source) load(ctx context.Context) {
	src.once.Do(func() {
		src.hits = map[cache.Key]hit{}
		for _, t := range src.targets {
			cfg, err := load(ctx, t, nil, src.warn)
			if err != nil {
				if ctx.Err() == nil {
					src.warn(fmt.Sprintf("%s: %v; building without it", t, err))
				}
				continue
			}
			for _, r := range cfg.Records {
				if _, ok := src.hits[r.Key]; !ok {
					src.hits[r.Key] = hit{rec: r, target: t}
				}
			}
			for _, m := range cfg.Mounts {
				src.mounts = append(src.mounts, mountHit{mount: m, target: t})
			}
		}
		if len(src.mounts) > 0 {
			src.restoreMounts(ctx)
		}
	})
}

// Fetch looks k up. When a target has it, Fetch downloads the layer's
// blob into the store (unless the store has it), unpacks it, and puts the
// record in the local cache, where the caller then finds it; it returns
// true. A key that no target has, or whose remote data is bad (a warning
// says what), is a miss: false and no error. Fetch fails only when ctx is
// done.
func (src *Source) Fetch(ctx context.Context, k cache.Key) (bool, error) {
	src.load(ctx)
	if err := ctx.Err(); err != nil {
		return false, err
	}
	h, ok := src.hits[k]
	if !ok {
		return false, nil
	}
	if err := fetch(ctx, src.store, src.cache, h); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		src.warn(fmt.Sprintf("%s: %v; running the step instead", h.target, err))
		return false, nil
	}
	return true, nil
}

// fetch brings h's blob and record into s and c. A blob it downloads has
// its digest checked by the store and its diffID here, as it streams
// past; one that the store had already is unpacked, which checks it.
// Either way the record's diffID, which goes into the image's config, is
// the layer's.
func fetch(ctx context.Context, s *store.Store, c *cache.Cache, h hit) error {
	r := h.rec
	downloaded := false
	err := s.PutBlob(ctx, r.Layer.Digest, func() (io.ReadCloser, error) {
		rc, err := h.target.blob(ctx, r.Layer.Digest)
		if err != nil {
			return nil, err
		}
		downloaded = true
		return newDiffIDReader(rc, r.DiffID), nil
	})
	if err != nil {
		return fmt.Errorf("fetching the layer of cache key %s (%s): %w", r.Key, r.Step, err)
	}
	if err := c.Put(ctx, r); err != nil {
		return fmt.Errorf("fetching cache key %s (%s): %w", r.Key, r.Step, err)
	}
	if downloaded {
		return nil
	}
	_, l, err := c.Get(ctx, r.Key)
	if err == nil {
		_, err = s.LayerDir(ctx, l)
	}
	if err != nil {
		derr := c.Delete(context.WithoutCancel(ctx), r.Key)
		return errors.Join(fmt.Errorf("fetching cache key %s (%s): %w", r.Key, r.Step, err), derr)
	}
	return nil
}

// diffIDReader passes a compressed layer through, decompressing it on
// the side (gzip, with pgzip; zstd) and failing at its end when the
// content's sha256 is not diffID.
type diffIDReader struct {
	rc     io.ReadCloser
	pw     *io.PipeWriter
	done   chan error // the decompressing goroutine's verdict
	diffID v1.Hash
	err    error
}

func newDiffIDReader(rc io.ReadCloser, diffID v1.Hash) *diffIDReader {
	pr, pw := io.Pipe()
	d := &diffIDReader{rc: rc, pw: pw, done: make(chan error, 1), diffID: diffID}
	go func() {
		err := hashUncompressed(pr, diffID)
		pr.CloseWithError(err) // unblocks the writer if the hash ended early
		d.done <- err
	}()
	return d
}

func (d *diffIDReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.rc.Read(p)
	if n > 0 {
		if _, werr := d.pw.Write(p[:n]); werr != nil {
			d.err = werr
			return 0, werr
		}
	}
	if err == io.EOF {
		d.pw.Close()
		if verr := <-d.done; verr != nil {
			d.err = verr
			return 0, verr
		}
		d.err = io.EOF
	}
	return n, err
}

func (d *diffIDReader) Close() error {
	d.pw.CloseWithError(errors.New("closed early"))
	return d.rc.Close()
}

// hashUncompressed reads a compressed layer from r and checks that its
// uncompressed content has the sha256 want.
func hashUncompressed(r io.Reader, want v1.Hash) error {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(4)
	var zr io.Reader
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := pgzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		zr = gz
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zd, err := zstd.NewReader(br)
		if err != nil {
			return err
		}
		defer zd.Close()
		zr = zd
	default:
		zr = br
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return fmt.Errorf("decompressing the layer: %w", err)
	}
	_, _ = io.Copy(io.Discard, br) // what follows the stream reaches EOF too
	if got := (v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}); got != want {
		return fmt.Errorf("the layer's content has diffID %s, want %s", got, want)
	}
	return nil
}

// ImportStats says what an import brought.
type ImportStats struct {
	Records, Mounts int
}

// Import copies every record that t holds, with its blob, into s and c
// (4 blobs at a time), and restores the cache mounts that the root lacks.
// Bad records are passed to warn and skipped.
func Import(ctx context.Context, t Target, s *store.Store, c *cache.Cache, warn func(string)) (ImportStats, error) {
	cfg, err := load(ctx, t, nil, warn)
	if err != nil {
		return ImportStats{}, err
	}
	var st ImportStats
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, r := range cfg.Records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := s.PutBlob(ctx, r.Layer.Digest, func() (io.ReadCloser, error) { return t.blob(ctx, r.Layer.Digest) })
			if err == nil {
				err = c.Put(ctx, r)
			}
			if err != nil {
				if ctx.Err() == nil {
					warn(fmt.Sprintf("%s: importing cache key %s (%s): %v; skipping it", t, r.Key, r.Step, err))
				}
				return
			}
			mu.Lock()
			st.Records++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return st, err
	}
	var ms []mountHit
	for _, m := range cfg.Mounts {
		ms = append(ms, mountHit{mount: m, target: t})
	}
	st.Mounts = restoreMounts(ctx, s, ms, warn)
	return st, ctx.Err()
}
