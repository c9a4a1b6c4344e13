package executor

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/image/store"
)

// TestEarlyDigest checks when a copy source is digested: while the base
// resolves when only config steps come between them, after the steps
// before it otherwise. A FIFO in the context tells: the digest warns
// that it skips it, and the base waits (up to wait) for a warning.
func TestEarlyDigest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps string
		copy  string // the copy's node
		wait  time.Duration
		want  []string
	}{
		{"first copy", "  - env: {A: b}\n  - workdir: /app\n  - copy: {src: ./src, dst: /app}\n", "main/2", 20 * time.Second, []string{"digest", "base"}},
		{"copy after a run", "  - run: true\n  - copy: {src: ./src, dst: /app}\n", "main/1", 300 * time.Millisecond, []string{"base", "digest"}},
		{"copy after a copy", "  - copy: {src: ./other, dst: /o}\n  - copy: {src: ./src, dst: /app}\n", "main/1", 20 * time.Second, []string{"digest", "base", "digest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte("from: example.org/base\nsteps:\n"+tc.steps), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"src", "other"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, d, "a"), []byte(d+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mkfifo(filepath.Join(dir, d, "fifo"), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			var mu sync.Mutex
			var events []string
			note := func(e string) {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}
			warned := make(chan struct{}, 1)
			bctx, err := buildctx.Open(dir, buildctx.WithWarn(func(string) {
				note("digest")
				select {
				case warned <- struct{}{}:
				default:
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			base := func(ctx context.Context, ref string) (v1.Image, error) {
				select {
				case <-warned:
				case <-time.After(tc.wait):
				}
				note("base")
				return empty.Image, nil
			}

			ctx := context.Background()
			s, err := store.Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			res := dryRunWith(t, dir, s, Options{Context: bctx, Base: base})
			mu.Lock()
			got := append([]string(nil), events...)
			mu.Unlock()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("order of the digest's warnings and the base (-want +got):\n%s", diff)
			}

			// Early or not, the key covers the same digest.
			in := res.Inputs[tc.copy]
			if len(in.Sources) != 1 {
				t.Fatalf("copy %s has sources %+v, want one", tc.copy, in.Sources)
			}
			fresh, err := buildctx.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fresh.Digest(ctx, in.Sources[0].Source)
			if err != nil {
				t.Fatal(err)
			}
			if in.Sources[0].Digest != want || in.Input.Inputs[0] != want {
				t.Errorf("copy %s: source digest %s, key input %v, want %s", tc.copy, in.Sources[0].Digest, in.Input.Inputs, want)
			}
		})
	}
}

// preloadRemote is a Remote that has every key: its Fetch puts a record
// of one layer into the cache, after waiting (up to wait) for Preload.
type preloadRemote struct {
	s     *store.Store
	c     *cache.Cache
	layer v1.Layer
	wait  time.Duration

	preloaded chan struct{}
	mu        sync.Mutex
	events    []string
}

func (p *preloadRemote) note(e string) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func (p *preloadRemote) Preload(ctx context.Context) {
	p.note("preload")
	close(p.preloaded)
}

func (p *preloadRemote) Fetch(ctx context.Context, k cache.Key) (bool, error) {
	select {
	case <-p.preloaded:
	case <-time.After(p.wait):
	}
	p.note("fetch")
	d, err := p.layer.Digest()
	if err != nil {
		return false, err
	}
	diffID, err := p.layer.DiffID()
	if err != nil {
		return false, err
	}
	size, err := p.layer.Size()
	if err != nil {
		return false, err
	}
	if err := p.s.PutBlob(ctx, d, p.layer.Compressed); err != nil {
		return false, err
	}
	return true, p.c.Put(ctx, cache.Record{Key: k, Layer: v1.Descriptor{Digest: d, Size: size, MediaType: types.OCILayer}, DiffID: diffID})
}

// TestPreload checks that a build has its Remote read what it holds
// before the first Fetch (while the first keys are computed), and that a
// dry run, which fetches nothing, does not.
func TestPreload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dryRun bool
		wait   time.Duration
		want   []string
	}{
		{"build", false, 20 * time.Second, []string{"preload", "fetch"}},
		{"dry run", true, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range map[string]string{"kiln.yml": "from: scratch\nsteps:\n  - copy: {src: a, dst: /a}\n", "a": "a\n"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			s, err := store.Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c, err := cache.Open(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			l, err := random.Layer(512, types.OCILayer)
			if err != nil {
				t.Fatal(err)
			}
			rm := &preloadRemote{s: s, c: c, layer: l, wait: tc.wait, preloaded: make(chan struct{})}
			res := buildWith(t, dir, s, Options{Remote: rm, DryRun: tc.dryRun})
			if (res.Image != nil) == tc.dryRun {
				t.Errorf("dry run %v, image %v", tc.dryRun, res.Image)
			}
			rm.mu.Lock()
			defer rm.mu.Unlock()
			if diff := cmp.Diff(tc.want, rm.events); diff != "" {
				t.Errorf("calls to the Remote (-want +got):\n%s", diff)
			}
		})
	}
}
