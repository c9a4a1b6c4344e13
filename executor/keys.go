package executor

import (
	"context"
	"errors"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/manifest"
)

// NodeInputs is what a node's cache key was computed from: what a build
// record keeps so that a later build can say why it missed the cache.
type NodeInputs struct {
	Key cache.Key
	// Input is what the key covers (zero for a base node).
	Input cache.KeyInput
	// BaseRef and BaseDigest are a base node's image reference and the
	// digest of the image it resolved to ("" for scratch).
	BaseRef, BaseDigest string
	// Sources are a copy step's sources from the build context, each
	// with the files it copies; Input.Inputs covers them all.
	Sources []SourceInput
	// Looked and Hit, in a DryRun, say whether the key was looked up
	// (steps that only change the config never are) and found in the
	// cache (for a test: whether it passed on the same filesystem before).
	Looked, Hit bool
}

// SourceInput is one copy source from the build context.
type SourceInput struct {
	Source string
	Digest v1.Hash
	Files  []buildctx.File
}

// inputsOf returns n's NodeInputs, made on first use; hold r.mu.
func (r *run) inputsOf(n *dag.Node) *NodeInputs {
	in := r.inputs[n]
	if in == nil {
		in = &NodeInputs{}
		r.inputs[n] = in
	}
	return in
}

// noteKey records the key of n and what it covers.
func (r *run) noteKey(n *dag.Node, key cache.Key, in cache.KeyInput) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ni := r.inputsOf(n)
	ni.Key, ni.Input = key, in
}

// noteBase records a base node's image and key.
func (r *run) noteBase(n *dag.Node, st *fsState) error {
	var d string
	if st.base != nil {
		h, err := st.base.Digest()
		if err != nil {
			return err
		}
		d = h.String()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ni := r.inputsOf(n)
	ni.Key, ni.BaseRef, ni.BaseDigest = st.key, n.Stage.From, d
	return nil
}

// sourceDigest is the digest of a copy source of n from the build
// context, recording its files.
func (r *run) sourceDigest(ctx context.Context, n *dag.Node, src string) (v1.Hash, error) {
	d, files, ok, err := r.takeEarlyDigest(ctx, n, src)
	if !ok {
		var c *buildctx.Context
		if c, err = r.contextOf(n.Step); err == nil {
			d, files, err = c.DigestFiles(ctx, src)
		}
	}
	if err != nil && n.Step.Copy != nil && n.Step.Copy.AllowEmptyWildcard && errors.Is(err, buildctx.ErrNoMatch) {
		// A wildcard matching nothing copies nothing (a Dockerfile's COPY).
		d, _, err = v1.SHA256(strings.NewReader("no match: " + src))
	}
	if err != nil {
		return v1.Hash{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ni := r.inputsOf(n)
	si := SourceInput{Source: src, Digest: d, Files: files}
	for i := range ni.Sources {
		if ni.Sources[i].Source == src {
			// The step runs again (a debugger's retry): what it reads now.
			ni.Sources[i] = si
			return d, nil
		}
	}
	ni.Sources = append(ni.Sources, si)
	return d, nil
}

// dryRunStep ends a step of a DryRun once its key is known: it looks the
// key up and goes on as if the step were cached, without running it.
func (r *run) dryRunStep(ctx context.Context, n *dag.Node, m *fsm.Machine, st *fsState, key cache.Key) (*fsState, error) {
	hit := false
	if !r.noCache(n) {
		_, ok, err := r.cached(ctx, n, key)
		if err != nil {
			return nil, err
		}
		hit = ok
	}
	r.mu.Lock()
	ni := r.inputsOf(n)
	ni.Looked, ni.Hit = true, hit
	r.mu.Unlock()
	st.key = key
	return st, m.To(ctx, fsm.Cached, nil)
}

// dryRunTest ends a test of a DryRun once its key is known.
func (r *run) dryRunTest(ctx context.Context, n *dag.Node, m *fsm.Machine, key cache.Key) error {
	hit := !r.noCache(n) && r.testPassed(key)
	r.mu.Lock()
	ni := r.inputsOf(n)
	ni.Looked, ni.Hit = true, hit
	r.mu.Unlock()
	return m.To(ctx, fsm.Cached, nil)
}

// contextOf returns where a copy step's sources are: the build context,
// or the directory of the registry module that wrote the step
// (Copy.Dir). Either way the key holds their content, not their place.
func (r *run) contextOf(s *manifest.Step) (*buildctx.Context, error) {
	if s.Copy == nil || s.Copy.Dir == "" {
		return r.opts.Context, nil
	}
	return buildctx.Open(s.Copy.Dir)
}
