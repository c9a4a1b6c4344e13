package executor

import (
	"context"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/manifest"
)

// A copy step's key needs the digest of its sources, and on a build whose
// steps come from a cache that digest is most of the step's time; the
// base image it builds on is resolved first, often over the network. So
// the sources of the copy steps that follow a base with nothing between
// them that takes time (a stage's first copies, after config steps) are
// digested while the bases resolve: the key covers the context as it
// was when the build started, as docker build's, which sends the context
// first. Later copies are digested when they start, after the steps
// before them ran, as before.

// earlyDigest is a copy source's digest that a build computes before its
// step starts.
type earlyDigest struct {
	done  chan struct{}
	d     v1.Hash
	files []buildctx.File
	err   error
}

// earlyKey names an early digest: a node's source.
type earlyKey struct {
	n   *dag.Node
	src string
}

// earlyDigests holds the early digests of a build.
type earlyDigests struct {
	mu sync.Mutex
	// queued are the digests not started, started those under way or
	// done; a step takes its own out of both.
	queued  map[earlyKey]*earlyDigest
	started map[earlyKey]*earlyDigest
	wg      sync.WaitGroup
}

// startEarlyDigests starts digesting, one source at a time in the order
// of nodes, the build-context sources of the copy steps that only a base
// and config steps come before. The caller cancels ctx and calls wait
// once the nodes have ended.
func (r *run) startEarlyDigests(ctx context.Context, nodes []*dag.Node) {
	e := &r.early
	e.queued, e.started = map[earlyKey]*earlyDigest{}, map[earlyKey]*earlyDigest{}
	if r.debug != nil {
		return // a debugged build digests each source at its step
	}
	var order []earlyKey
	for _, n := range nodes {
		if n.Kind != dag.KindStep || !earlyCopy(n) {
			continue
		}
		for _, src := range n.Step.Copy.AllSources() {
			k := earlyKey{n, src}
			if e.queued[k] == nil {
				e.queued[k] = &earlyDigest{done: make(chan struct{})}
				order = append(order, k)
			}
		}
	}
	if len(order) == 0 {
		return
	}
	e.wg.Go(func() {
		for _, k := range order {
			e.mu.Lock()
			ed := e.queued[k]
			delete(e.queued, k)
			if ed != nil {
				e.started[k] = ed
			}
			e.mu.Unlock()
			if ed == nil {
				continue // its step took it first
			}
			if ctx.Err() != nil {
				ed.err = context.Cause(ctx)
			} else if c, err := r.contextOf(k.n.Step); err != nil {
				ed.err = err
			} else {
				ed.d, ed.files, ed.err = c.DigestFiles(ctx, k.src)
			}
			close(ed.done)
		}
	})
}

// earlyCopy reports whether n copies from the build context (or a
// module's directory) with only a base and config steps before it.
func earlyCopy(n *dag.Node) bool {
	s := n.Step
	if s.Kind != manifest.StepCopy || s.Copy == nil || s.Copy.From != "" || len(s.Copy.URLs) > 0 {
		return false
	}
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Kind == dag.KindStep && !configOnly(p.Step) {
			return false
		}
	}
	return true
}

// configOnly reports whether s only changes the image config: it makes
// no layer and takes no time.
func configOnly(s *manifest.Step) bool {
	switch s.Kind {
	case manifest.StepEnv, manifest.StepUser, manifest.StepConfig:
		return true
	case manifest.StepWorkdir:
		return !s.MakeWorkdir
	}
	return false
}

// takeEarlyDigest returns the early digest of n's source src, waiting for
// it, if there is one that no one took yet. A step that runs again (a
// debugger's retry) finds none and reads its sources again.
func (r *run) takeEarlyDigest(ctx context.Context, n *dag.Node, src string) (d v1.Hash, files []buildctx.File, ok bool, err error) {
	e := &r.early
	k := earlyKey{n, src}
	e.mu.Lock()
	ed := e.started[k]
	delete(e.started, k)
	delete(e.queued, k) // not started: the step digests it itself
	e.mu.Unlock()
	if ed == nil {
		return v1.Hash{}, nil, false, nil
	}
	select {
	case <-ed.done:
		return ed.d, ed.files, true, ed.err
	case <-ctx.Done():
		return v1.Hash{}, nil, true, context.Cause(ctx)
	}
}
