package executor

import (
	"context"
	"errors"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
)

// Remote is a cache shared beyond this root (package cache/remote's
// Source, over a registry). A build asks it for a step's key when the
// local cache lacks the key, holding the key's lock so that one process
// fetches it once.
type Remote interface {
	// Fetch looks k up and, when it has it, puts the record and its
	// layer into the build's local cache and returns true. Bad or missing
	// remote data is a miss (false, nil); an error fails the step, so
	// Fetch returns one only when ctx is done.
	Fetch(ctx context.Context, k cache.Key) (bool, error)
}

// preloader is a Remote that can read what it holds ahead of the first
// Fetch (remotecache.Source can).
type preloader interface {
	Preload(ctx context.Context)
}

// startPreload has Options.Remote read what it holds while the first keys
// are computed (the digest of a copy's sources, a base's resolution),
// when it can and a step of nodes may ask it; Build waits for it with the
// early digests.
func (r *run) startPreload(ctx context.Context, nodes []*dag.Node) {
	p, ok := r.opts.Remote.(preloader)
	if !ok || r.opts.DryRun {
		return
	}
	for _, n := range nodes {
		if n.Kind == dag.KindStep && !configOnly(n.Step) {
			r.early.wg.Go(func() { p.Preload(ctx) })
			return
		}
	}
}

// cachedOrRemote looks key up in the local cache and, when it misses
// there, in Options.Remote, which copies a hit into the local cache.
func (r *run) cachedOrRemote(ctx context.Context, n *dag.Node, key cache.Key) (cachedLayer, bool, error) {
	l, ok, err := r.cached(ctx, n, key)
	if err != nil || ok || r.opts.Remote == nil {
		return l, ok, err
	}
	found, err := r.opts.Remote.Fetch(ctx, key)
	if err != nil || !found {
		return cachedLayer{}, false, err
	}
	return r.cached(ctx, n, key)
}

// pendingDir is a cached layer's directory, unpacked when a step or test
// first needs it.
type pendingDir struct {
	layer v1.Layer
	once  sync.Once
	err   error
}

// layerDir returns the directory of a layer found in the cache. It is
// only noted: a directory the store does not have yet is unpacked, and
// one it has is checked, when a node that runs needs it (unpackFor), so a
// build whose steps all come from the cache unpacks and walks nothing.
// A debugged build unpacks at once, for its views.
func (r *run) layerDir(ctx context.Context, l v1.Layer) (string, error) {
	if r.debug != nil {
		return r.opts.Store.LayerDir(ctx, l)
	}
	diffID, err := l.DiffID()
	if err != nil {
		return "", err
	}
	// A directory the store has is only marked used here: it is checked
	// against its tree digest (an lstat of every file) by unpackFor, when
	// a node that runs mounts it, as a missing one is unpacked then.
	if err := r.opts.Store.MarkLayerUsed(diffID); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	dir := r.opts.Store.LayerPath(diffID)
	r.unpacks.LoadOrStore(dir, &pendingDir{layer: l})
	return dir, nil
}

// unpackFor unpacks the pending directories of st, the state n builds on,
// and of the other nodes n reads (a copy's or a bind mount's stage).
func (r *run) unpackFor(ctx context.Context, n *dag.Node, st *fsState) error {
	dirs := append([]string(nil), st.dirs...)
	for _, d := range n.Deps {
		if ds := r.state(d); ds != nil {
			dirs = append(dirs, ds.dirs...)
		}
	}
	for _, dir := range dirs {
		v, ok := r.unpacks.Load(dir)
		if !ok {
			continue
		}
		p := v.(*pendingDir)
		p.once.Do(func() { _, p.err = r.opts.Store.LayerDir(ctx, p.layer) })
		if p.err != nil {
			return p.err
		}
	}
	return nil
}

// baseDirs returns the directories of a base image's layers, unpacked as
// layerDir unpacks a cached layer's: when a node that runs needs them.
func (r *run) baseDirs(ctx context.Context, img v1.Image) ([]string, error) {
	if r.debug != nil {
		return r.opts.Store.LayerDirs(ctx, img)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	dirs := make([]string, len(layers))
	for i, l := range layers {
		if dirs[i], err = r.layerDir(ctx, l); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}
