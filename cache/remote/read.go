package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/image/store"
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

// Preload reads what the targets hold, as the first Fetch would: a build
// calls it as it starts, so that reading the remote cache overlaps with
// computing the first keys. A Fetch waits for a Preload under way. Call
// it with a context that lives as long as the Fetch calls that follow:
// what a cancelled Preload missed is not read again.
func (src *Source) Preload(ctx context.Context) { src.load(ctx) }

// Fetch looks k up. When a target has it, Fetch downloads the layer's
// blob into the store (unless the store has it; from a registry, only
// when something reads it, see putLayer), and puts the record in the
// local cache, where the caller then finds it; it returns true. A key that no target has, or whose remote data is bad (a warning
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

// fetch brings h's blob and record into s and c. The store checks the
// blob's digest as it downloads it; the record's diffID is checked when a
// step first unpacks the layer, as for a pulled image's config.
func fetch(ctx context.Context, s *store.Store, c *cache.Cache, h hit) error {
	r := h.rec
	r, err := putLayer(ctx, s, h.target, r, true)
	if err != nil {
		return fmt.Errorf("fetching the layer of cache key %s (%s): %w", r.Key, r.Step, err)
	}
	if err := c.Put(ctx, r); err != nil {
		return fmt.Errorf("fetching cache key %s (%s): %w", r.Key, r.Step, err)
	}
	return nil
}

// putLayer downloads the blob of r's layer from t into s (unless s has
// it) and returns r naming the layer as the store keeps a step's: its
// tar (store.Decompress), so that an image made from the remote cache is
// the image the steps made. With lazy, from a registry, a record that
// knows its tar's size is kept without the blob: the store fetches it
// when something reads it (store.PutLazyLayer).
func putLayer(ctx context.Context, s *store.Store, t Target, r cache.Record, lazy bool) (cache.Record, error) {
	if rt, ok := t.(*registryTarget); lazy && ok && r.DiffSize > 0 && r.Layer.MediaType != types.OCIUncompressedLayer {
		// The registry must have it (HEAD): a missing blob is a miss.
		if ok, err := rt.exists(ctx, r.Layer.Digest); err != nil || !ok {
			return r, fmt.Errorf("blob %s: %w", r.Layer.Digest, cmp.Or(err, errors.New("the registry does not have it")))
		}
		var err error
		r.Layer, err = s.PutLazyLayer(ctx, rt.ref.Context().String(), r.Layer, r.DiffID, r.DiffSize)
		return r, err
	}
	err := s.PutBlob(ctx, r.Layer.Digest, func() (io.ReadCloser, error) { return t.blob(ctx, r.Layer.Digest) })
	if err != nil {
		return r, err
	}
	if r.Layer, err = s.Decompress(ctx, r.Layer, r.DiffID); err != nil {
		return r, err
	}
	return r, nil
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
			r, err := putLayer(ctx, s, t, r, false)
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
