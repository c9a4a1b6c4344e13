package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
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
// lineage, the files linked before the copy and what the copy learnt.
type incremental struct {
	lineage cache.Key
	pre     map[string]buildctx.Prior
	keep    *buildctx.Keep
}

// priors returns the records of the root's incremental copies.
func (r *run) priors() *prior.Store {
	return prior.NewStore(filepath.Join(r.opts.Store.Root(), "cache", "prior"), r.opts.Store.CreateTemp, func(d v1.Hash) bool {
		_, err := os.Lstat(r.opts.Store.LayerPath(d))
		return err == nil
	})
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
	sources := map[string][sha256.Size]byte{}
	for _, src := range in.Sources {
		for _, f := range src.Files {
			h, err := v1.NewHash(f.Digest)
			sum, herr := hex.DecodeString(h.Hex)
			if f.Type == "file" && err == nil && herr == nil && len(sum) == sha256.Size {
				sources[f.Path] = [sha256.Size]byte(sum)
			}
		}
	}
	r.mu.Unlock()
	inc.pre, err = r.linkPrior(ctx, inc.lineage, upper, func(src string) bool { _, ok := sources[src]; return ok })
	if err != nil {
		return nil, err
	}
	inc.keep = buildctx.NewKeep(upper, inc.pre, sources)
	err = r.copyInto(ctx, n, mounts, st, inc.keep)
	if len(inc.pre) > 0 && ctx.Err() == nil && (err != nil || prior.Stale(upper, inc.pre, inc.keep)) {
		if err := prior.Clear(upper); err != nil {
			return nil, err
		}
		inc.pre, inc.keep = nil, buildctx.NewKeep(upper, nil, sources)
		err = r.copyInto(ctx, n, mounts, st, inc.keep)
	}
	return inc, err
}

// known returns the contents' sha256 of the files the copy kept, by
// inode: what the digest of the layer's tree need not read again (see
// layer.TreeOptions).
func (inc *incremental) known() map[uint64][sha256.Size]byte {
	m := map[uint64][sha256.Size]byte{}
	for t, p := range inc.pre {
		if inc.keep.Kept(t) {
			m[p.Ino] = p.Sum
		}
	}
	return m
}

// linkPrior links into upper the files of the previous result of the
// lineage whose sources want accepts (see prior.Link), and returns them.
// Without a previous result whose layer directory the store holds as it
// made it, it links nothing; if linking fails, upper is emptied again.
func (r *run) linkPrior(ctx context.Context, lineage cache.Key, upper string, want func(string) bool) (map[string]buildctx.Prior, error) {
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

// record notes the layer diffID that inc's copy made, whose regular files'
// contents have the sha256s sums (by path), for the next copy of its
// lineage. A record that cannot be written only makes that copy a full
// one.
func (inc *incremental) record(r *run, diffID v1.Hash, sums map[string][sha256.Size]byte) {
	if inc == nil {
		return
	}
	placed := inc.keep.Placed()
	files := make([]prior.File, 0, len(placed))
	for _, p := range placed {
		if sum, ok := sums[p.Target]; ok {
			files = append(files, prior.File{Placed: p, Sum: sum})
		}
	}
	_ = r.priors().Write(inc.lineage, prior.Record{DiffID: diffID, Files: files})
}
