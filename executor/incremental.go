package executor

import (
	"context"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/executor/prior"
	"github.com/kiln-build/kiln/manifest"
)

// incremental is a copy step made incrementally (see package prior): its
// lineage and what its copy learnt.
type incremental struct {
	lineage cache.Key
	keep    *buildctx.Keep
}

// priors returns the records of the root's incremental copies.
func (r *run) priors() *prior.Store {
	return prior.NewStore(filepath.Join(r.opts.Store.Root(), "cache", "prior"))
}

// copyStep performs the copy or template step n into the snapshot sk,
// mounted as mounts. A copy from the build context alone, on a
// snapshotter whose writable layer is a directory, is incremental: the
// files of the step's previous result (same lineage) whose sources still
// exist are linked into the snapshot first and kept where the copy finds
// them unchanged; if that guess leaves a file the copy did not write, or
// the copy fails, it is made again from nothing. It returns what to
// record once the layer is committed (nil for a copy that is not
// incremental).
func (r *run) copyStep(ctx context.Context, n *dag.Node, sk string, mounts []engine.Mount, st *fsState) (*incremental, error) {
	c, ok := r.opts.Snapshotter.(engine.Committer)
	s := n.Step
	if !ok || s.Kind != manifest.StepCopy || s.Copy.From != "" || s.Copy.Extract || len(s.Copy.Inline) > 0 || len(s.Copy.URLs) > 0 || r.noCache(n) {
		return nil, r.copyInto(ctx, n, mounts, st, nil)
	}
	upper, err := c.Writable(ctx, sk)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	in := r.inputsOf(n)
	inc := &incremental{lineage: prior.Lineage(in.Input)}
	files := map[string]bool{}
	for _, src := range in.Sources {
		for _, f := range src.Files {
			if f.Type == "file" {
				files[f.Path] = true
			}
		}
	}
	r.mu.Unlock()
	pre, err := r.linkPrior(ctx, inc.lineage, upper, func(src string) bool { return files[src] })
	if err != nil {
		return nil, err
	}
	inc.keep = buildctx.NewKeep(pre)
	err = r.copyInto(ctx, n, mounts, st, inc.keep)
	if len(pre) > 0 && ctx.Err() == nil && (err != nil || prior.Stale(upper, pre, inc.keep)) {
		if err := prior.Clear(upper); err != nil {
			return nil, err
		}
		inc.keep = buildctx.NewKeep(nil)
		err = r.copyInto(ctx, n, mounts, st, inc.keep)
	}
	return inc, err
}

// linkPrior links into upper the files of the previous result of the
// lineage whose sources want accepts (see prior.Link), and returns them.
// Without a previous result whose layer directory the store holds as it
// made it, it links nothing; if linking fails, upper is emptied again.
func (r *run) linkPrior(ctx context.Context, lineage cache.Key, upper string, want func(string) bool) (map[string]uint64, error) {
	rec, ok := r.priors().Read(lineage)
	if !ok {
		return nil, nil
	}
	dir, ok, err := r.opts.Store.ExistingLayerDir(ctx, rec.DiffID)
	if err != nil || !ok {
		return nil, err
	}
	pre, err := prior.Link(ctx, dir, upper, rec, want)
	if err != nil {
		// The previous result went away meanwhile (collected, say): the
		// copy is a full one.
		return nil, prior.Clear(upper)
	}
	return pre, nil
}

// record notes the layer diffID that inc's copy made, for the next copy of
// its lineage. A record that cannot be written only makes that copy a
// full one.
func (inc *incremental) record(r *run, diffID v1.Hash) {
	if inc == nil {
		return
	}
	_ = r.priors().Write(inc.lineage, prior.Record{DiffID: diffID, Files: inc.keep.Placed()})
}
