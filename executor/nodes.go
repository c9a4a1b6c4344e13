package executor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/container"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/image"
	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
)

// scratchKey is the key of an empty base.
var scratchKey = cache.ComputeKey(cache.KeyInput{Kind: "scratch"})

// runBase resolves a stage's base image and applies the stage's env,
// workdir and user.
func (r *run) runBase(ctx context.Context, n *dag.Node, m *fsm.Machine) (*fsState, error) {
	st := &fsState{key: scratchKey}
	if n.Stage.From != "scratch" {
		img, err := r.base(ctx, n)
		if err != nil {
			return nil, manifest.Errorf(n.Stage.Pos, "base image %q: %v", n.Stage.From, err)
		}
		if img != nil {
			d, err := img.Digest()
			if err != nil {
				return nil, err
			}
			cfg, err := image.ConfigOf(img)
			if err != nil {
				return nil, fmt.Errorf("reading config of %s: %w", n.Stage.From, err)
			}
			dirs, err := r.baseDirs(ctx, img)
			if err != nil {
				return nil, err
			}
			st = &fsState{base: img, dirs: dirs, config: cfg, key: cache.BaseKey(d)}
		}
	}
	applyStage(&st.config.Config, n.Stage)
	m.SetCacheKey(st.key.String())
	if err := r.noteBase(n, st); err != nil {
		return nil, err
	}
	return st, m.To(ctx, fsm.Cached, nil)
}

func applyStage(c *v1.Config, s *manifest.Stage) {
	for _, kv := range s.Env {
		c.Env = manifest.SetEnv(c.Env, kv.Key+"="+kv.Value)
	}
	if s.Workdir != "" {
		c.WorkingDir = s.Workdir
	}
	if s.User != "" {
		c.User = s.User
	}
}

// parentState is the state n builds on: its parent's, copied.
func (r *run) parentState(n *dag.Node) (*fsState, error) {
	if n.Parent == nil {
		return nil, fmt.Errorf("node %s has no parent", n.Key)
	}
	p := r.state(n.Parent)
	if p == nil {
		return nil, fmt.Errorf("node %s: parent %s left no state", n.Key, n.Parent.Key)
	}
	c := p.clone()
	if n.Parent.Stage != n.Stage {
		// A stage FROM another stage: its own env, workdir, user apply.
		applyStage(&c.config.Config, n.Stage)
	}
	return c, nil
}

func (r *run) noCache(n *dag.Node) bool {
	if r.opts.NoCache {
		return true
	}
	for _, f := range r.opts.NoCacheFilter {
		if f == n.Key || f == n.Name {
			return true
		}
	}
	return false
}

// runStep runs one step: a config change, or a layer from the cache or
// from a container (run) or a copy into a snapshot (copy, template).
func (r *run) runStep(ctx context.Context, n *dag.Node, m *fsm.Machine) (*fsState, error) {
	st, err := r.parentState(n)
	if err != nil {
		return nil, err
	}
	s := n.Step
	in := cache.KeyInput{Parent: st.key, Kind: string(s.Kind), Network: string(r.opts.Network)}
	if r.epoch != nil {
		in.Epoch = strconv.FormatInt(r.epoch.Unix(), 10)
	}
	switch {
	case configOnly(s):
		switch s.Kind {
		case manifest.StepEnv:
			for _, kv := range s.Env {
				st.config.Env = manifest.SetEnv(st.config.Env, kv.Key+"="+kv.Value)
				in.Args = append(in.Args, kv.Key+"="+kv.Value)
			}
		case manifest.StepWorkdir:
			st.config.WorkingDir = r.abs(st.config.WorkingDir, s.Workdir)
			in.Args = []string{st.config.WorkingDir}
		case manifest.StepUser:
			st.config.User = s.User
			in.Args = []string{s.User}
		case manifest.StepConfig:
			args, err := applyConfig(&st.config, s.Config)
			if err != nil {
				return nil, manifest.Errorf(s.Pos, "%s: %v", s.Name, err)
			}
			in.Args = args
		}
		st.key = cache.ComputeKey(in)
		m.SetCacheKey(st.key.String())
		r.noteKey(n, st.key, in)
		return st, m.To(ctx, fsm.Cached, nil)
	case s.Kind == manifest.StepWorkdir:
		st.config.WorkingDir = r.abs(st.config.WorkingDir, s.Workdir)
		in.Args = []string{st.config.WorkingDir, "mkdir"}
		in.User = st.config.User
	case s.Kind == manifest.StepRun:
		in.Args = s.Run.Args()
		in.Env, in.Workdir, in.User = runEnv(st.config.Env, s.RunEnv), st.config.WorkingDir, st.config.User
		nw, err := r.stepNetwork(s)
		if err != nil {
			return nil, manifest.Errorf(s.Pos, "%s: %v", s.Name, err)
		}
		in.Network = string(nw)
		in.Platform = r.keyPlatform(n)
		if in.Inputs, err = r.valuesInput(in.Args); err != nil {
			return nil, err
		}
		in.Inputs = append(in.Inputs, r.servicesInput(n)...)
		if len(s.Mounts) > 0 {
			mk, err := r.mountsKey(ctx, s)
			if err != nil {
				return nil, manifest.Errorf(s.Pos, "%s: %v", s.Name, err)
			}
			in.Args = append(append(in.Args, "\x00mounts"), mk...)
		}
	case s.Kind == manifest.StepCopy, s.Kind == manifest.StepTemplate:
		d, args, err := r.inputDigest(ctx, n)
		if err != nil {
			return nil, manifest.Errorf(s.Pos, "%s: %v", s.Name, err)
		}
		in.Args, in.Inputs, in.Workdir = args, []v1.Hash{d}, st.config.WorkingDir
	default:
		return nil, manifest.Errorf(s.Pos, "unknown step kind %q", s.Kind)
	}
	key := cache.ComputeKey(in)
	m.SetCacheKey(key.String())
	r.noteKey(n, key, in)
	if r.debug != nil {
		if st, stop, err := r.beforeStep(ctx, n, m, st, key); stop {
			return st, err
		}
	}
	if r.opts.DryRun {
		return r.dryRunStep(ctx, n, m, st, key)
	}

	// hit takes the step's layer from lookup, when it has the key; the
	// error, when ok, is that of moving the node to Cached.
	hit := func(lookup func(context.Context, *dag.Node, cache.Key) (cachedLayer, bool, error)) (ok bool, err error) {
		if r.noCache(n) {
			return false, nil
		}
		l, ok, err := lookup(ctx, n, key)
		if err != nil || !ok {
			return false, err
		}
		if err := r.addLayer(ctx, st, l, s.Name); err != nil {
			return false, err
		}
		st.key = key
		return true, m.To(ctx, fsm.Cached, nil)
	}
	if ok, err := hit(r.cached); ok {
		return st, err
	} else if err != nil {
		return nil, err
	}
	// Run it once, even with several kiln processes building it at once:
	// under the key's lock, look again (another may have just made it),
	// and in the remote cache.
	unlock, err := r.opts.Cache.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	if ok, err := hit(r.cachedOrRemote); ok {
		return st, err
	} else if err != nil {
		return nil, err
	}
	if err := m.To(ctx, fsm.Creating, nil); err != nil {
		return nil, err
	}
	if err := r.unpackFor(ctx, n, st); err != nil {
		return nil, err
	}
	l, err := r.makeLayer(ctx, n, m, st)
	if err != nil {
		return nil, err
	}
	diffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	// The layer's blob, its tar, is durable: the record names it. It is
	// written beside the next steps, the key's lock held until then.
	rec := cache.Record{Key: key, DiffID: diffID, Created: time.Now().UTC(), Step: s.Name}
	locked = false
	r.background(func() error {
		defer unlock()
		d, err := partial.Descriptor(l)
		if err != nil {
			return fmt.Errorf("committing %s: %w", s.Name, err)
		}
		rec.Layer = v1.Descriptor{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType}
		rec.DiffSize = d.Size // the layer is its tar
		return r.opts.Cache.Put(context.WithoutCancel(ctx), rec)
	})
	if err := r.addLayer(ctx, st, cachedLayer{l, rec.Created}, s.Name); err != nil {
		return nil, err
	}
	st.key = key
	return st, m.To(ctx, fsm.Done, nil)
}

// cached looks key up for n. A missing record is a miss; so is a
// damaged one (it does not parse, or its blob is missing), with a warning
// in n's output naming the key: the step runs again and its Put replaces
// the record.
func (r *run) cached(ctx context.Context, n *dag.Node, key cache.Key) (cachedLayer, bool, error) {
	rec, l, err := r.opts.Cache.Get(ctx, key)
	if errors.Is(err, cache.ErrNotFound) {
		return cachedLayer{}, false, nil
	}
	if errors.Is(err, cache.ErrCorrupt) {
		if _, said := r.damaged.LoadOrStore(key, true); !said {
			r.obs.Output(n.Key, fmt.Appendf(nil, "warning: cache record %s is damaged, running the step again: %v\n", key, err))
		}
		return cachedLayer{}, false, nil
	}
	if err != nil {
		return cachedLayer{}, false, err
	}
	return cachedLayer{l, rec.Created}, true, nil
}

// cachedLayer is a step's layer and when the step made it.
type cachedLayer struct {
	layer   v1.Layer
	created time.Time
}

// addLayer puts a step's layer on top of st. Layers are dated when their
// step first ran, so a build from the cache gives the same image.
func (r *run) addLayer(ctx context.Context, st *fsState, l cachedLayer, createdBy string) error {
	dir, err := r.layerDir(ctx, l.layer)
	if err != nil {
		return err
	}
	created := l.created.UTC().Truncate(time.Second)
	if r.epoch != nil {
		created = r.epoch.UTC()
	}
	st.dirs = append(st.dirs, dir)
	st.layers = append(st.layers, image.Layer{Layer: l.layer, CreatedBy: createdBy, Created: created})
	return nil
}

// abs resolves a workdir or destination against the current workdir.
func (r *run) abs(wd, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if wd == "" {
		wd = "/"
	}
	return path.Join(wd, p)
}

// inputDigest hashes what a copy or template step reads.
func (r *run) inputDigest(ctx context.Context, n *dag.Node) (v1.Hash, []string, error) {
	s := n.Step
	switch s.Kind {
	case manifest.StepCopy:
		c := s.Copy
		// copy-v2: copies keep hard links, made destinations are owned
		// by the copy's owner, and modes keep their special bits.
		args := []string{c.From, c.Src, c.Dst, c.Mode, c.Own, "\x00copy-v2",
			strconv.FormatBool(c.ModeDirs), strconv.FormatBool(c.AllowEmptyWildcard)}
		if len(c.Sources) > 0 || len(c.Inline) > 0 || c.Extract {
			// A Dockerfile's COPY and ADD: every source, and inline files.
			args = append(args, "\x00sources")
			args = append(args, c.Sources...)
			args = append(args, "\x00inline")
			for _, f := range c.Inline {
				args = append(args, f.Name, f.Data)
			}
			args = append(args, "\x00extract", strconv.FormatBool(c.Extract), "\x00tar-owners")
		}
		if c.From != "" {
			src := r.state(r.g.Last(c.From))
			if src == nil {
				return v1.Hash{}, nil, fmt.Errorf("stage %q left no state", c.From)
			}
			// The source stage's key covers everything it holds; its
			// owners are kept.
			args = append(args, "\x00keep-owner")
			return v1.Hash{Algorithm: "sha256", Hex: src.key.String()}, args, nil
		}
		srcs := c.AllSources()
		if len(srcs) == 1 && len(c.URLs) == 0 {
			d, err := r.sourceDigest(ctx, n, srcs[0])
			return d, args, err
		}
		var all strings.Builder
		if len(c.URLs) > 0 {
			// What the URLs hold now, not what they held last time.
			dl, err := r.download(ctx, n, c.URLs)
			if err != nil {
				return v1.Hash{}, nil, err
			}
			args = append(args, "\x00urls")
			for i, u := range c.URLs {
				args = append(args, u.URL, dl.names[i])
				all.WriteString(dl.hashes[i] + "\n")
			}
		}
		for _, src := range srcs {
			d, err := r.sourceDigest(ctx, n, src)
			if err != nil {
				return v1.Hash{}, nil, err
			}
			all.WriteString(d.String() + "\n")
		}
		d, _, err := v1.SHA256(strings.NewReader(all.String()))
		return d, args, err
	case manifest.StepTemplate:
		out, err := manifest.RenderTemplate(r.b, s.Template)
		if err != nil {
			return v1.Hash{}, nil, err
		}
		d, _, err := v1.SHA256(strings.NewReader(string(out)))
		return d, []string{s.Template.Src, s.Template.Dst}, err
	}
	return v1.Hash{}, nil, fmt.Errorf("no inputs for a %s step", s.Kind)
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// snapshotKey names a node's snapshot uniquely (several kiln processes
// may build the same node at once).
func snapshotKey(n *dag.Node) string {
	k := strings.NewReplacer("/", "-", ":", "-", " ", "-").Replace(n.Key)
	if len(k) > 80 {
		k = k[:80]
	}
	return "b-" + strings.Trim(k, "-._") + "-" + randomSuffix()
}

// makeLayer makes the layer of a run, copy or template step in a fresh
// snapshot over the parent's layers.
func (r *run) makeLayer(ctx context.Context, n *dag.Node, m *fsm.Machine, st *fsState) (v1.Layer, error) {
	sk := snapshotKey(n)
	dirs, err := r.stack(ctx, st.dirs)
	if err != nil {
		return nil, err
	}
	mounts, err := r.opts.Snapshotter.Prepare(ctx, sk, dirs)
	if err != nil {
		return nil, err
	}
	defer r.opts.Snapshotter.Remove(context.WithoutCancel(ctx), sk) //nolint:errcheck // swept later otherwise

	s := n.Step
	var inc *incremental // a copy's, to record once its layer is committed
	switch s.Kind {
	case manifest.StepRun:
		out := r.newOutput(n)
		extra, env, cleanup, err := r.runMounts(ctx, s)
		if err != nil {
			return nil, manifest.Errorf(s.Pos, "%s: %v", s.Name, err)
		}
		defer cleanup()
		tb, err := r.toolboxMounts(ctx, n.Stage, s.Run.Args())
		if err != nil {
			return nil, err
		}
		extra = append(tb, extra...)
		nw, err := r.stepNetwork(s)
		if err != nil {
			return nil, err
		}
		if err := r.startServices(ctx, n, true); err != nil {
			return nil, err
		}
		pd, err := r.podOf(ctx, n)
		if err != nil {
			return nil, err
		}
		status, err := r.runContainerWith(ctx, n, sk, mounts, extra, nw, engine.Process{
			Args: s.Run.Args(), Env: runEnv(runEnv(st.config.Env, s.RunEnv), env), Cwd: st.config.WorkingDir, User: st.config.User,
			Stdout: out.outW, Stderr: out.errW,
		}, 0, m, out.all, pd)
		out.flush()
		if err == nil && status.Code != 0 {
			err = r.exitError(n, status)
		}
		if err != nil {
			se := out.failed("step", s.Name, s.Pos, err)
			se.services = r.serviceLogs(n)
			return nil, se
		}
	case manifest.StepCopy, manifest.StepTemplate:
		if err := m.To(ctx, fsm.Running, nil); err != nil {
			return nil, err
		}
		if inc, err = r.copyStep(ctx, n, sk, mounts, st); err != nil {
			return nil, manifest.Errorf(s.Pos, "%s: %v", s.Name, err)
		}
	case manifest.StepWorkdir:
		if err := m.To(ctx, fsm.Running, nil); err != nil {
			return nil, err
		}
		if err := r.makeWorkdir(ctx, mounts, st); err != nil {
			return nil, manifest.Errorf(s.Pos, "%s: %v", s.Name, err)
		}
	}
	if err := m.To(ctx, fsm.Committing, nil); err != nil {
		return nil, err
	}
	l, err := r.commit(ctx, sk, inc)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return nil, fmt.Errorf("committing %s: the disk holding kiln's root %s is full: free space (kiln rmi removes images) or use another --root: %w", s.Name, r.opts.Store.Root(), syscall.ENOSPC)
		}
		return nil, fmt.Errorf("committing %s: %w", s.Name, err)
	}
	if r.opts.Precompress {
		r.opts.Store.Precompress(r.outer, l, store.Gzip)
	}
	return l, nil
}

// commit makes snapshot sk's changes a layer of the store. An overlay
// upperdir is the layer, unpacked: the store keeps it as the layer's
// directory, hashing its tar without writing it (the tar is written
// from the directory when something reads it; 200 MB hashed once, not
// written, synced and read back). Another snapshotter's diff is stored
// as a tar. An incremental copy inc (nil for another step) records what
// it made for the next of its lineage.
func (r *run) commit(ctx context.Context, sk string, inc *incremental) (v1.Layer, error) {
	if c, ok := r.opts.Snapshotter.(engine.Committer); ok {
		upper, err := c.Writable(ctx, sk)
		if err != nil {
			return nil, err
		}
		var tree layer.TreeOptions
		if inc != nil {
			tree = layer.TreeOptions{Known: inc.known(), Sums: map[string][sha256.Size]byte{}}
		}
		l, err := r.opts.Store.CommitLayerDir(ctx, upper, r.epoch, tree)
		if err != nil {
			return nil, err
		}
		if inc != nil {
			diffID, err := l.DiffID()
			if err != nil {
				return nil, err
			}
			inc.record(r, diffID, tree.Sums)
		}
		return l, nil
	}
	return r.opts.Store.StageLayer(ctx, func(w io.Writer) error {
		return r.opts.Snapshotter.Diff(ctx, sk, w, engine.DiffOptions{SourceDateEpoch: r.epoch})
	})
}

// runContainerWith runs p in a container on mounts, with further mounts
// and a network, and waits for it. It holds one of the build's container
// slots instead of n's job while the container exists.
// Its output, out, is passed on from when n is running.
func (r *run) runContainerWith(ctx context.Context, n *dag.Node, id string, mounts, extra []engine.Mount, nw engine.Network, p engine.Process, timeout time.Duration, m *fsm.Machine, out *tail, pd *pod) (st engine.Status, err error) {
	lim, to := r.limitsFor(n)
	if timeout > 0 {
		to = timeout
	}
	if err := r.emulation(n); err != nil {
		return engine.Status{}, err
	}
	spec := engine.Spec{ID: id, Rootfs: mounts, Mounts: extra, Process: p, Network: nw, Limits: lim, Timeout: to}
	if pd != nil {
		pd.join(&spec)
	}
	err = r.whileContainer(ctx, r.jobs[n], func() error {
		st, err = r.startWait(ctx, spec, m, out)
		return err
	})
	return st, err
}

// limitsFor returns the limits of n's container: the build's, with the
// step's own over them.
func (r *run) limitsFor(n *dag.Node) (engine.Limits, time.Duration) {
	l, t := r.opts.Limits, r.opts.Timeout
	if n.Step != nil && n.Step.Limits != nil {
		sl := n.Step.Limits
		if sl.Memory > 0 {
			l.Memory = sl.Memory
		}
		if sl.Pids > 0 {
			l.Pids = sl.Pids
		}
		if sl.Timeout > 0 {
			t = sl.Timeout
		}
	}
	if n.Test != nil && n.Test.Timeout > 0 {
		t = n.Test.Timeout
	}
	return l, t
}

// exitError says how a step's or test's process ended badly, naming the
// limit it hit.
func (r *run) exitError(n *dag.Node, st engine.Status) error {
	lim, to := r.limitsFor(n)
	switch {
	case st.TimedOut:
		return fmt.Errorf("killed: it ran past its timeout of %s (set timeout: on the step, or --timeout)", to)
	case st.OOMKilled:
		return fmt.Errorf("killed by the kernel: out of memory, over its limit of %d MiB (set memory: on the step, or --memory)", lim.Memory>>20)
	case st.Signal != "":
		return fmt.Errorf("killed by %s (exit status %d)", st.Signal, st.Code)
	}
	return fmt.Errorf("exit status %d", st.Code)
}

// startWait creates the container, waits for it and deletes it. The
// process starts, and may print, as the container is created: its output,
// out, is passed on only after the running event, so that no observer sees
// a node print before it runs.
func (r *run) startWait(ctx context.Context, spec engine.Spec, m *fsm.Machine, out *tail) (engine.Status, error) {
	c, err := r.opts.Runtime.Create(ctx, spec)
	if err != nil {
		return engine.Status{}, err
	}
	defer c.Delete(context.WithoutCancel(ctx)) //nolint:errcheck // the run's error matters more
	if err := m.To(ctx, fsm.Running, nil); err != nil {
		return engine.Status{}, err
	}
	out.start()
	st, err := c.Wait(ctx)
	if err != nil {
		return st, err
	}
	if st.Cancelled {
		return st, context.Cause(ctx)
	}
	return st, c.Delete(context.WithoutCancel(ctx))
}

// copyInto performs a copy or template step into the mounted snapshot.
func (r *run) copyInto(ctx context.Context, n *dag.Node, mounts []engine.Mount, st *fsState, keep *buildctx.Keep) error {
	s := n.Step
	sets := [][]engine.Mount{mounts}
	if s.Kind == manifest.StepCopy && s.Copy.From != "" {
		src := r.state(r.g.Last(s.Copy.From))
		dirs, err := r.stack(ctx, src.dirs)
		if err != nil {
			return err
		}
		sets = append(sets, readOnly(dirs))
	}
	var data []byte
	if s.Kind == manifest.StepTemplate {
		var err error
		if data, err = manifest.RenderTemplate(r.b, s.Template); err != nil {
			return err
		}
	}
	opts, err := copyOptions(s)
	if err != nil {
		return err
	}
	// The copy runs in Mounted's mount namespace, and so must its writers.
	opts.Go = container.Go
	opts.Keep = keep
	var inline string // a directory holding a copy's inline files
	if s.Kind == manifest.StepCopy && len(s.Copy.Inline) > 0 {
		if inline, err = writeInline(r.opts.Tmp, s.Copy.Inline); err != nil {
			return err
		}
		defer os.RemoveAll(inline)
	}
	return container.Mounted(r.opts.Tmp, sets, func(roots []string) error {
		if err := resolveOwner(roots[0], s, &opts); err != nil {
			return err
		}
		if s.Kind == manifest.StepTemplate {
			return buildctx.WriteFile(roots[0], r.abs(st.config.WorkingDir, s.Template.Dst), data, opts)
		}
		// A trailing slash means "into this directory".
		dst := r.abs(st.config.WorkingDir, s.Copy.Dst)
		if strings.HasSuffix(s.Copy.Dst, "/") && dst != "/" {
			dst += "/"
		}
		for _, src := range s.Copy.AllSources() {
			err := r.copySource(ctx, s, src, roots, dst, opts)
			if s.Copy.AllowEmptyWildcard && errors.Is(err, buildctx.ErrNoMatch) {
				continue // a Dockerfile's wildcard that matches nothing copies nothing
			}
			if err != nil {
				return err
			}
		}
		for _, f := range s.Copy.Inline {
			if err := buildctx.CopyTree(ctx, inline, f.Name, roots[0], dst, opts); err != nil {
				return err
			}
		}
		if len(s.Copy.URLs) > 0 {
			dl, err := r.download(ctx, n, s.Copy.URLs)
			if err != nil {
				return err
			}
			for _, name := range dl.names {
				if err := buildctx.CopyTree(ctx, dl.dir, name, roots[0], dst, opts); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// copySource copies the source src of the copy step s into roots[0] (the
// step's root filesystem; roots[1] is the stage it copies from, if any).
func (r *run) copySource(ctx context.Context, s *manifest.Step, src string, roots []string, dst string, opts buildctx.CopyOptions) error {
	switch {
	case s.Copy.From != "":
		return buildctx.CopyTree(ctx, roots[1], src, roots[0], dst, opts)
	case s.Copy.Extract:
		return r.addFromContext(ctx, src, roots[0], dst, opts, s.Copy.Own != "")
	}
	c, err := r.contextOf(s)
	if err != nil {
		return err
	}
	return c.Copy(ctx, src, roots[0], dst, opts)
}

// uniqueDirs drops all but the top-most of layer directories that repeat
// (two steps that made the same layer, often an empty one): overlayfs
// refuses a lowerdir given twice, and the top-most copy re-applies
// everything the lower one did.
func uniqueDirs(dirs []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(dirs))
	for i := len(dirs) - 1; i >= 0; i-- {
		if !seen[dirs[i]] {
			seen[dirs[i]] = true
			out = append(out, dirs[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// readOnly mounts layer directories as a read-only root filesystem.
func readOnly(dirs []string) []engine.Mount {
	switch len(dirs) {
	case 0:
		return []engine.Mount{{Type: "tmpfs", Source: "tmpfs", Options: []string{"ro"}}}
	case 1:
		return []engine.Mount{{Type: "bind", Source: dirs[0], Options: []string{"ro"}}}
	}
	lowers := make([]string, len(dirs))
	for i, d := range dirs {
		lowers[len(dirs)-1-i] = d
	}
	return []engine.Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(lowers, ":")}}}
}

func copyOptions(s *manifest.Step) (buildctx.CopyOptions, error) {
	var o buildctx.CopyOptions
	var mode, own string
	if s.Copy != nil {
		mode, own = s.Copy.Mode, s.Copy.Own
	}
	if mode != "" {
		v, err := strconv.ParseUint(mode, 8, 32)
		if err != nil || v > 0o7777 {
			return o, fmt.Errorf("mode %q: want an octal mode like 0644", mode)
		}
		fm := buildctx.UnixMode(uint32(v)) // with its setuid, setgid and sticky bits
		o.Mode = &fm
		o.ModeDirs = s.Copy != nil && s.Copy.ModeDirs
	}
	if own != "" {
		u, g, _ := strings.Cut(own, ":")
		if g == "" {
			g = u
		}
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if (err1 != nil || err2 != nil) && s.Kind != manifest.StepCopy {
			return o, fmt.Errorf("owner %q: want numeric uid:gid", own)
		}
		o.UID, o.GID = uid, gid // names are looked up in the destination (resolveOwner)
	}
	// Without --chown, COPY --from keeps the owners of the stage's files,
	// as BuildKit does.
	o.KeepOwner = s.Kind == manifest.StepCopy && s.Copy.From != "" && own == ""
	return o, nil
}

// runTest runs a test branch on a throwaway snapshot of its parent, or
// finds that the same test passed on the same filesystem before.
func (r *run) runTest(ctx context.Context, n *dag.Node, m *fsm.Machine) error {
	st, err := r.parentState(n)
	if err != nil {
		return err
	}
	t := n.Test
	kin := cache.KeyInput{
		Parent: st.key, Kind: "test", Args: t.Run.Args(), Env: st.config.Env,
		Workdir: st.config.WorkingDir, User: st.config.User, Network: string(r.opts.Network),
		Shell: []string{t.Timeout.String()}, Platform: r.keyPlatform(n),
	}
	if kin.Inputs, err = r.valuesInput(kin.Args); err != nil {
		return err
	}
	kin.Inputs = append(kin.Inputs, r.servicesInput(n)...)
	key := cache.ComputeKey(kin)
	m.SetCacheKey(key.String())
	r.noteKey(n, key, kin)
	if r.opts.DryRun {
		return r.dryRunTest(ctx, n, m, key)
	}
	if r.debug != nil {
		if err := r.beforeTest(ctx, n, st, key); err != nil {
			return err
		}
	}
	res := TestResult{Name: t.Name, Stage: n.Stage.Name, Node: n.Key, Pos: t.Pos}
	start := time.Now()
	if !r.noCache(n) && r.testPassed(key) {
		res.Passed, res.Cached = true, true
		r.addTest(res)
		return m.To(ctx, fsm.Cached, nil)
	}
	if err := m.To(ctx, fsm.Creating, nil); err != nil {
		return err
	}
	servicesReady := r.startServicesBeside(ctx, n)
	if err := r.unpackFor(ctx, n, st); err != nil {
		return err
	}
	sk := snapshotKey(n)
	dirs, err := r.stack(ctx, st.dirs)
	if err != nil {
		return err
	}
	mounts, err := r.opts.Snapshotter.Prepare(ctx, sk, dirs)
	if err != nil {
		return err
	}
	defer r.opts.Snapshotter.Remove(context.WithoutCancel(ctx), sk) //nolint:errcheck // swept later otherwise
	tb, err := r.toolboxMounts(ctx, n.Stage, t.Run.Args())
	if err != nil {
		return err
	}
	out := r.newOutput(n)
	if err := servicesReady(); err != nil {
		return err
	}
	pd, err := r.podOf(ctx, n)
	if err != nil {
		return err
	}
	status, err := r.runContainerWith(ctx, n, sk, mounts, tb, r.opts.Network, engine.Process{
		Args: t.Run.Args(), Env: st.config.Env, Cwd: st.config.WorkingDir, User: st.config.User,
		Stdout: out.outW, Stderr: out.errW,
	}, t.Timeout, m, out.all, pd)
	out.flush()
	res.Duration, res.Code = time.Since(start), status.Code
	res.Output, res.Stdout, res.Stderr = out.all.String(), out.stdout.String(), out.stderr.String()
	if err == nil && status.Code != 0 {
		err = r.exitError(n, status)
	}
	if err != nil {
		se := out.failed("test", t.Name, t.Pos, err)
		se.services = r.serviceLogs(n)
		res.Err = se
		if ctx.Err() == nil {
			r.addTest(res)
		}
		return res.Err
	}
	res.Passed = true
	r.addTest(res)
	r.recordPass(key)
	return m.To(ctx, fsm.Passed, nil)
}

func (r *run) addTest(t TestResult) {
	r.mu.Lock()
	r.tests = append(r.tests, t)
	r.mu.Unlock()
}

func (r *run) testPath(k cache.Key) string {
	return filepath.Join(r.opts.Store.Root(), "cache", "tests", k.String())
}

func (r *run) testPassed(k cache.Key) bool {
	_, err := os.Stat(r.testPath(k))
	return err == nil
}

// recordPass notes that a test passed; a failure to note it only costs
// a re-run later.
func (r *run) recordPass(k cache.Key) {
	p := r.testPath(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	tmp := p + ".tmp-" + randomSuffix()
	if err := os.WriteFile(tmp, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
	}
}

// assemble makes the image of the target node.
func (r *run) assemble(target *dag.Node) (v1.Image, error) {
	st := r.state(target)
	if st == nil {
		return nil, fmt.Errorf("the target %s left no state", target.Key)
	}
	// The manifest's image: config, applied as a config step's change is.
	cfg := st.config.Clone()
	ic := r.b.Image
	if ic.Entrypoint != nil && ic.Cmd == nil {
		cfg.Cmd = nil // as Docker: a new entrypoint resets the base's cmd
	}
	if _, err := applyConfig(&cfg, &ic); err != nil {
		return nil, fmt.Errorf("applying the image config: %w", err)
	}
	// The image is as old as its newest layer (or its base, when no step
	// made a layer): a rebuild from the cache gives the same digest.
	var created time.Time
	if st.base != nil {
		if cf, err := st.base.ConfigFile(); err == nil {
			created = cf.Created.Time
		}
	}
	for _, l := range st.layers {
		if l.Created.After(created) {
			created = l.Created
		}
	}
	if r.epoch != nil {
		created = r.epoch.UTC()
	}
	return image.Assemble(st.base, st.layers, cfg, created.UTC())
}
