package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/internal/ocilayout"
)

// ExportOptions say what Export writes besides the records.
type ExportOptions struct {
	// Mounts, when true, exports the content of the root's cache mounts
	// (RUN --mount=type=cache) too. The default is not to.
	Mounts bool
	// Warn is given the records that are skipped (a corrupt local record),
	// one line each. The default drops them.
	Warn func(string)
}

// ExportStats says what an Export wrote.
type ExportStats struct {
	// Records and Mounts are how many this export wrote; Total is how
	// many records the main tag holds after the merge.
	Records, Mounts, Total int
	// Fragment is the tag of this export's own artifact ("" for an OCI
	// layout, which gets none).
	Fragment string
}

// Export writes the records of keys (those the local cache c has; others
// are skipped) with their layers to t: to a registry first as a fragment
// of its own, then merged into t's main tag; to an OCI layout merged into
// the main tag under the layout's lock. Blobs that t has are not written
// again. See the package documentation for why.
func Export(ctx context.Context, t Target, s *store.Store, c *cache.Cache, keys []cache.Key, o ExportOptions) (ExportStats, error) {
	warn := o.Warn
	if warn == nil {
		warn = func(string) {}
	}
	local := map[v1.Hash]func() (io.ReadCloser, error){}
	var mine Config
	seen := map[cache.Key]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		r, l, err := c.Get(ctx, k)
		if errors.Is(err, cache.ErrNotFound) {
			continue
		}
		if errors.Is(err, cache.ErrCorrupt) {
			warn(fmt.Sprintf("not exporting cache key %s: %v", k, err))
			continue
		}
		if err != nil {
			return ExportStats{}, fmt.Errorf("exporting the cache to %s: %w", t, err)
		}
		// A step's layer is kept uncompressed: the cache gets it as gzip.
		if l, err = s.Compress(ctx, l, store.Gzip); err != nil {
			return ExportStats{}, fmt.Errorf("exporting the cache to %s: cache key %s: %w", t, k, err)
		}
		d, err := partial.Descriptor(l)
		if err != nil {
			return ExportStats{}, fmt.Errorf("exporting the cache to %s: cache key %s: %w", t, k, err)
		}
		r.Layer = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
		mine.Records = append(mine.Records, r)
		local[r.Layer.Digest] = l.Compressed
	}
	if o.Mounts {
		ms, err := mountLayers(ctx, s)
		if err != nil {
			return ExportStats{}, fmt.Errorf("exporting the cache mounts to %s: %w", t, err)
		}
		for _, m := range ms {
			mine.Mounts = append(mine.Mounts, m.Mount)
			local[m.Layer.Digest] = m.layer.Compressed
		}
	}
	open := func(d v1.Hash) func() (io.ReadCloser, error) {
		if f, ok := local[d]; ok {
			return f
		}
		return func() (io.ReadCloser, error) { return t.blob(ctx, d) }
	}

	if lt, ok := t.(*layoutTarget); ok {
		return exportLayout(ctx, lt, mine, local, open, warn)
	}

	frag, err := newArtifact(mine, open)
	if err != nil {
		return ExportStats{}, fmt.Errorf("exporting the cache to %s: %w", t, err)
	}
	fragTag := fragmentPrefix(t.tag()) + frag.configDigest().Hex[:12]
	if err := writeArtifact(ctx, t, fragTag, frag); err != nil {
		return ExportStats{}, err
	}

	// The main tag: what it and the fragments hold, with this export's
	// records winning (their blobs are the ones just written).
	merged, err := mergeThere(ctx, t, mine, []string{fragTag}, local, warn)
	if err != nil {
		return ExportStats{}, err
	}
	merged.Merged = append(merged.Merged, fragTag)
	main, err := newArtifact(merged, open)
	if err != nil {
		return ExportStats{}, fmt.Errorf("exporting the cache to %s: %w", t, err)
	}
	if err := writeArtifact(ctx, t, t.tag(), main); err != nil {
		return ExportStats{}, err
	}
	return ExportStats{Records: len(mine.Records), Mounts: len(mine.Mounts), Total: len(merged.Records), Fragment: fragTag}, nil
}

// mergeThere returns mine merged into what t holds (but the fragments in
// skip), with mine's records winning and those whose blobs t lacks left
// out.
func mergeThere(ctx context.Context, t Target, mine Config, skip []string, local map[v1.Hash]func() (io.ReadCloser, error), warn func(string)) (Config, error) {
	there, err := load(ctx, t, skip, warn)
	if err != nil {
		return Config{}, fmt.Errorf("exporting the cache to %s: %w", t, err)
	}
	there = present(ctx, t, there, local, warn)
	return merge(mine, there), nil
}

// exportLayout writes mine to an OCI layout: unlike a registry tag, a
// layout can be locked, so it needs no fragment. Under the layout's lock
// the main tag becomes the merge of mine with what it and the fragments
// (left by an older kiln) hold, and the fragments it merged are removed:
// the layout keeps one ref, the artifact's.
func exportLayout(ctx context.Context, t *layoutTarget, mine Config, local map[v1.Hash]func() (io.ReadCloser, error), open func(v1.Hash) func() (io.ReadCloser, error), warn func(string)) (ExportStats, error) {
	l, err := ocilayout.Lock(ctx, t.dir)
	if err != nil {
		return ExportStats{}, fmt.Errorf("exporting the cache to %s: %w", t, err)
	}
	defer l.Close()
	merged, err := mergeThere(ctx, t, mine, nil, local, warn)
	if err != nil {
		return ExportStats{}, err
	}
	frags := merged.Merged
	merged.Merged = nil
	main, err := newArtifact(merged, open)
	if err == nil {
		var img v1.Image
		if img, err = main.image(); err == nil {
			err = l.Put(ctx, img, t.tag())
		}
	}
	if err == nil {
		err = l.Remove(frags...)
	}
	if err != nil {
		return ExportStats{}, fmt.Errorf("writing the cache artifact %s of %s: %w", t.tag(), t, err)
	}
	return ExportStats{Records: len(mine.Records), Mounts: len(mine.Mounts), Total: len(merged.Records)}, nil
}

func writeArtifact(ctx context.Context, t Target, tag string, a *artifact) error {
	img, err := a.image()
	if err == nil {
		err = t.write(ctx, tag, img)
		// Distribution refuses one of two uploads of the same blob that
		// commit at once (DIGEST_INVALID): writers exporting to one cache
		// at the same moment merge into the same artifact. The write is
		// the same each time, so it is tried again.
		for try := 1; err != nil && try < writeTries && uploadRaced(err); try++ {
			err = t.write(ctx, tag, img)
		}
	}
	if err != nil {
		return fmt.Errorf("writing the cache artifact %s of %s: %w", tag, t, err)
	}
	return nil
}

// writeTries is how many times writeArtifact writes an artifact whose
// upload a registry refused as a race (uploadRaced).
const writeTries = 3

// uploadRaced reports whether err is a registry's refusal of a blob upload
// that another upload of the same blob can cause.
func uploadRaced(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.DigestInvalidErrorCode, transport.BlobUploadInvalidErrorCode, transport.BlobUploadUnknownErrorCode:
			return true
		}
	}
	return false
}

// existsJobs is how many blobs present checks at once.
const existsJobs = 8

// present returns cfg without the records and mounts whose blob t lacks
// (and this export does not write), each a warning: the main tag names
// its blobs, and a registry refuses a manifest that names a missing one.
// Blobs whose presence cannot be told are kept.
func present(ctx context.Context, t Target, cfg Config, local map[v1.Hash]func() (io.ReadCloser, error), warn func(string)) Config {
	var check []v1.Hash
	seen := map[v1.Hash]bool{}
	for _, d := range append(recordBlobs(cfg.Records), mountBlobs(cfg.Mounts)...) {
		if _, ok := local[d]; !ok && !seen[d] {
			seen[d] = true
			check = append(check, d)
		}
	}
	missing := map[v1.Hash]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, existsJobs)
	for _, d := range check {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ok, err := t.exists(ctx, d); err == nil && !ok {
				mu.Lock()
				missing[d] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(missing) == 0 {
		return cfg
	}
	out := Config{Version: cfg.Version, Merged: cfg.Merged}
	for _, r := range cfg.Records {
		if missing[r.Layer.Digest] {
			warn(fmt.Sprintf("%s: dropping cache key %s (%s): its layer %s is missing", t, r.Key, r.Step, r.Layer.Digest))
			continue
		}
		out.Records = append(out.Records, r)
	}
	for _, m := range cfg.Mounts {
		if missing[m.Layer.Digest] {
			warn(fmt.Sprintf("%s: dropping cache mount %s: its layer %s is missing", t, m.ID, m.Layer.Digest))
			continue
		}
		out.Mounts = append(out.Mounts, m)
	}
	return out
}

func recordBlobs(rs []cache.Record) []v1.Hash {
	out := make([]v1.Hash, len(rs))
	for i, r := range rs {
		out[i] = r.Layer.Digest
	}
	return out
}

func mountBlobs(ms []Mount) []v1.Hash {
	out := make([]v1.Hash, len(ms))
	for i, m := range ms {
		out[i] = m.Layer.Digest
	}
	return out
}
