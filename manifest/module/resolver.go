package module

import (
	"context"
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/manifest"
)

// Resolver resolves the oci:// sources of use: steps through a Cache;
// it is package manifest's ModuleResolver.
type Resolver struct {
	Cache *Cache
	// Pins are digests by source (kiln.lock's modules): a pinned source
	// is had by its digest, whatever its tag names now.
	Pins map[string]string
	// Locked makes a source without a pin an error (kiln build --locked).
	Locked bool
}

var _ manifest.ModuleResolver = (*Resolver)(nil)

// ResolveModule returns the local directory of the module source names.
func (r *Resolver) ResolveModule(ctx context.Context, source string) (manifest.ResolvedModule, error) {
	fetch := source
	if d, ok := r.Pins[source]; ok {
		repo := strings.TrimPrefix(source, Scheme)
		if i := strings.LastIndex(repo, "@"); i >= 0 {
			repo = repo[:i]
		} else if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		fetch = Scheme + repo + "@" + d
	} else if r.Locked && !strings.Contains(source, "@") {
		return manifest.ResolvedModule{}, fmt.Errorf("--locked: %s is not in the lock file: run kiln lock", source)
	}
	e, err := r.Cache.Pull(ctx, fetch)
	if err != nil {
		if fetch != source {
			return manifest.ResolvedModule{}, fmt.Errorf("the lock pins %s: %w", strings.TrimPrefix(fetch, Scheme), err)
		}
		return manifest.ResolvedModule{}, err
	}
	return manifest.ResolvedModule{Dir: e.Dir, Digest: e.Digest}, nil
}
