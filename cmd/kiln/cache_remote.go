package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	remotecache "github.com/kiln-build/kiln/cache/remote"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/image/store"
)

// cacheSpec is one --cache-to or --cache-from value.
type cacheSpec struct {
	raw    string
	ref    string // REGISTRY/REPO[:TAG]
	mode   string // min or max (--cache-to)
	mounts bool   // export the cache mounts too (--cache-to)
}

// maxCacheTag is the longest tag a cache ref may have: fragments add
// "-kc-" and 12 hex digits, and a tag has at most 128 characters.
const maxCacheTag = 128 - len("-kc-") - 12

const cacheSpecUsage = "want registry://REGISTRY/REPO[:TAG][,mode=min|max][,mounts=true]"

// parseCacheSpec parses registry://REF[,mode=min|max][,mounts=true]; to
// says whether it is a --cache-to (the only one that takes options).
func parseCacheSpec(flag, s string, to bool) (cacheSpec, error) {
	parts := strings.Split(s, ",")
	ref, ok := strings.CutPrefix(parts[0], "registry://")
	if !ok || ref == "" {
		return cacheSpec{}, fmt.Errorf("%s %q: %s", flag, s, cacheSpecUsage)
	}
	sp := cacheSpec{raw: s, ref: ref, mode: "min"}
	for _, kv := range parts[1:] {
		k, v, _ := strings.Cut(kv, "=")
		if !to {
			return cacheSpec{}, fmt.Errorf("%s %q: %s takes no options (mode= and mounts= are for --cache-to)", flag, s, flag)
		}
		switch {
		case k == "mode" && (v == "min" || v == "max"):
			sp.mode = v
		case k == "mounts" && (v == "true" || v == "false"):
			sp.mounts = v == "true"
		default:
			return cacheSpec{}, fmt.Errorf("%s %q: option %q: %s", flag, s, kv, cacheSpecUsage)
		}
	}
	return sp, nil
}

// cacheTarget is the remotecache target of a cache ref: a tag in a
// registry, reached with the global registry flags and kiln login's
// credentials.
func (a *app) cacheTarget(ctx context.Context, flag, ref string) (remotecache.Target, error) {
	rc, err := a.registry()
	if err != nil {
		return nil, err
	}
	r, err := rc.Reference(ref)
	if err == nil {
		r, err = rc.Location(r) // registries.conf's location for the name
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	tag, ok := r.(name.Tag)
	if !ok {
		return nil, fmt.Errorf("%s %s: a cache is written and read by tag, not by digest: use REGISTRY/REPO:TAG", flag, ref)
	}
	if len(tag.TagStr()) > maxCacheTag {
		return nil, fmt.Errorf("%s %s: the tag is longer than %d characters", flag, ref, maxCacheTag)
	}
	return remotecache.Registry(tag, rc.RemoteOptions(ctx)...), nil
}

// warner returns a function that prints warnings on stderr, one at a
// time, from any goroutine.
func (a *app) warner() func(string) {
	var mu sync.Mutex
	return func(m string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(a.stderr, "kiln: warning: %s\n", m)
	}
}

// cacheSource returns the Remote of the --cache-from values, or nil for
// none.
func (a *app) cacheSource(ctx context.Context, s *store.Store, c *cache.Cache, specs []cacheSpec) (executor.Remote, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	var ts []remotecache.Target
	for _, sp := range specs {
		t, err := a.cacheTarget(ctx, "--cache-from", sp.ref)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return remotecache.NewSource(s, c, a.warner(), ts...), nil
}

// exportCache writes the records of a finished build to each --cache-to.
func (a *app) exportCache(ctx context.Context, s *store.Store, c *cache.Cache, g *dag.Graph, res *executor.Result, specs []cacheSpec) error {
	return a.exportCacheKeys(ctx, s, c, specs, func(mode string) []cache.Key { return cacheKeys(g, res, mode) })
}

// exportCacheKeys writes to each --cache-to the records of the keys that
// keysOf returns for its mode (a multi-platform build's are those of
// every platform's graph).
func (a *app) exportCacheKeys(ctx context.Context, s *store.Store, c *cache.Cache, specs []cacheSpec, keysOf func(mode string) []cache.Key) error {
	for _, sp := range specs {
		start := time.Now()
		t, err := a.cacheTarget(ctx, "--cache-to", sp.ref)
		if err != nil {
			return err
		}
		st, err := remotecache.Export(ctx, t, s, c, keysOf(sp.mode), remotecache.ExportOptions{Mounts: sp.mounts, Warn: a.warner()})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "exported %d cache records and %d cache mounts to %s in %s (%d records there)\n",
			st.Records, st.Mounts, t, time.Since(start).Round(time.Millisecond), st.Total)
	}
	return nil
}

// cacheKeys returns the keys of the steps whose records a --cache-to of
// mode exports: mode min, the steps whose layers are in the image (the
// target's chain of parents); mode max, every step the build needed,
// those of other stages and those that tests branch off included.
func cacheKeys(g *dag.Graph, res *executor.Result, mode string) []cache.Key {
	var nodes []*dag.Node
	if mode == "max" {
		nodes = g.Needed()
	} else {
		for n := g.Target(); n != nil; n = n.Parent {
			nodes = append(nodes, n)
		}
	}
	var keys []cache.Key
	for _, n := range nodes {
		if in, ok := res.Inputs[n.Key]; ok && n.Kind == dag.KindStep {
			keys = append(keys, in.Key)
		}
	}
	return keys
}

// openTransfer opens the store and cache of kiln cache export and
// import, and their target: DIR, an OCI image layout, or registry://REF.
func (a *app) openTransfer(ctx context.Context, cmd, arg, tag string) (*store.Store, *cache.Cache, remotecache.Target, error) {
	s, err := a.store(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := cache.Open(ctx, s)
	if err != nil {
		return nil, nil, nil, err
	}
	if ref, ok := strings.CutPrefix(arg, "registry://"); ok {
		t, err := a.cacheTarget(ctx, cmd, ref)
		return s, c, t, err
	}
	return s, c, remotecache.Layout(arg, tag), nil
}

func newCacheExportCommand(a *app) *cobra.Command {
	var tag string
	var mounts bool
	c := &cobra.Command{
		Use:   "export DIR|registry://REF",
		Short: "Write every cache record, with its layer, to an OCI layout directory (or a registry)",
		Long: `Export writes the local cache as the artifact that --cache-to writes: to
DIR, an OCI image layout (created if need be) under the tag --tag, or to
registry://REGISTRY/REPO:TAG. Records already there are kept (merged). kiln
cache import DIR, or kiln build --cache-from, reads it back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, c, t, err := a.openTransfer(ctx, "cache export", args[0], tag)
			if err != nil {
				return err
			}
			keys, err := c.Keys(ctx)
			if err != nil {
				return err
			}
			st, err := remotecache.Export(ctx, t, s, c, keys, remotecache.ExportOptions{Mounts: mounts, Warn: a.warner()})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "exported %d records and %d cache mounts to %s (%d records there)\n", st.Records, st.Mounts, t, st.Total)
			return err
		},
	}
	c.Flags().StringVar(&tag, "tag", "cache", "the tag of the artifact in DIR")
	c.Flags().BoolVar(&mounts, "mounts", false, "export the contents of RUN --mount=type=cache directories too")
	return c
}

func newCacheImportCommand(a *app) *cobra.Command {
	var tag string
	c := &cobra.Command{
		Use:   "import DIR|registry://REF",
		Short: "Read every cache record, with its layer, from an OCI layout directory (or a registry)",
		Long: `Import copies into the local cache every record (and its layer) of the
artifact that kiln cache export or --cache-to wrote, and restores the
cache mounts it holds that this root lacks. Bad records are skipped with a
warning.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, c, t, err := a.openTransfer(ctx, "cache import", args[0], tag)
			if err != nil {
				return err
			}
			st, err := remotecache.Import(ctx, t, s, c, a.warner())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "imported %d records and %d cache mounts from %s\n", st.Records, st.Mounts, t)
			return err
		},
	}
	c.Flags().StringVar(&tag, "tag", "cache", "the tag of the artifact in DIR")
	return c
}

// cacheSpecs parses --cache-to and --cache-from.
func (f *buildFlags) cacheSpecs() (to, from []cacheSpec, err error) {
	for _, s := range f.cacheTo {
		sp, err := parseCacheSpec("--cache-to", s, true)
		if err != nil {
			return nil, nil, err
		}
		to = append(to, sp)
	}
	for _, s := range f.cacheFrom {
		sp, err := parseCacheSpec("--cache-from", s, false)
		if err != nil {
			return nil, nil, err
		}
		from = append(from, sp)
	}
	return to, from, nil
}
