package executor

import (
	"context"

	"github.com/kiln-build/kiln/cache"
)

// Remote is a cache shared beyond this root (package remotecache's
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

// cachedOrRemote looks key up in the local cache and, when it misses
// there, in Options.Remote, which copies a hit into the local cache.
func (r *run) cachedOrRemote(ctx context.Context, key cache.Key) (cachedLayer, bool, error) {
	l, ok, err := r.cached(ctx, key)
	if err != nil || ok || r.opts.Remote == nil {
		return l, ok, err
	}
	found, err := r.opts.Remote.Fetch(ctx, key)
	if err != nil || !found {
		return cachedLayer{}, false, err
	}
	return r.cached(ctx, key)
}
