package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/container"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/image"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/toolbox"
)

// Inspector is an Observer that can also stop a build's steps: when
// Options.Observer implements it (as io.WriterTo upgrades an io.Reader),
// the executor calls Before once a step's (or test's) cache key is known
// and before the cache is looked up, and After once a step has ended,
// well or not. Both are called from the step's own goroutine: the step waits
// for them, the rest of the graph goes on. Steps that only change the
// config (env, user, a workdir that makes no directory) are not stopped.
type Inspector interface {
	fsm.Observer
	Before(ctx context.Context, v *NodeView) Action
	After(ctx context.Context, v *NodeView) Action
}

// Stops reports whether an Inspector's Before is called for node n, so
// that a breakpoint there can stop: for a test, and for a step that makes
// a layer; not for a step that only changes the image's config
// (configOnly: ENV, USER, CMD, LABEL, EXPOSE…).
func Stops(n *dag.Node) bool {
	return n.Test != nil || n.Step != nil && !configOnly(n.Step)
}

// ActionKind is what an Inspector tells the executor to do with a step.
type ActionKind int

// The actions.
const (
	// Continue runs the step (Before), or lets its result stand (After).
	Continue ActionKind = iota
	// Skip drops the step: its layer is absent from the image, and the
	// steps after it build on its parent's filesystem.
	Skip
	// Retry runs a failed step again (After; Before treats it as
	// Continue).
	Retry
	// Abort fails the step with ErrAborted, which cancels the build.
	Abort
	// Edit replaces a run step's command with Action.Command, for this
	// build only, and runs it.
	Edit
	// Commit keeps the changes of the view's last Run, for this build
	// only. After a step failed (After), they become the step's layer,
	// in place of what the step left. Before a step (Before), the step
	// runs (or comes from the cache) as usual, then the changes go on
	// top of its layer as a layer of their own: what the shell saw was
	// the filesystem before the step, and the step's own work is not
	// dropped. Either way the hand-made layer is not put in the cache,
	// and the steps after it get keys derived from the step's key and
	// that layer's digest (see shellKey), which no build that runs the
	// step computes. A later build so runs the step again instead of
	// reusing a hand-made layer.
	Commit
)

// Action is an Inspector's answer.
type Action struct {
	Kind    ActionKind
	Command string // Edit: the new command, run with /bin/sh -c
}

// ErrAborted is the error of a step an Inspector aborted.
var ErrAborted = errors.New("aborted from the debugger")

// NodeView is what an Inspector sees of a step: what it runs, on what,
// and, in After, how it went. Its filesystem is the state before the
// step in Before, and after it in After (for a failed step: whatever the
// step left in its snapshot).
type NodeView struct {
	Node    string       // the node's key
	Name    string       // the step as the user wrote it
	Stage   string       // the stage's name
	Index   int          // the step's index in its stage
	Pos     manifest.Pos // where the user wrote it
	Kind    manifest.StepKind
	Test    bool     // a test: it can only go on or be aborted
	Command []string // a run step's or test's argv
	// Env, Workdir and User are the step's process's.
	Env      []string
	Workdir  string
	User     string
	CacheKey string
	// Dirs are the layer directories of the view's filesystem, base
	// first: the parent's in Before, with the step's layer in After.
	Dirs []string
	// Changes is the label of the changes Diff lists: the step's own in
	// After, its parent's (when the parent made a layer) in Before.
	Changes string
	// Graph is the build's graph; Node is one of its keys.
	Graph *dag.Graph
	// Services are the names of the services the test or run step runs
	// beside; ServiceExec runs a process in one.
	Services []string

	// After only.
	Cached   bool
	Err      error
	ExitCode int    // a run step's exit code; -1 when it did not exit
	Output   string // the last lines of its output
	Snapshot string // a failed step's snapshot, until Release

	parentDirs []string
	changes    v1.Layer // a layer to diff, or nil
	d          *debugRun
	released   bool
	shell      string          // the snapshot the last Run wrote to, kept for Commit
	shellOwned bool            // shell is a snapshot of Run's own, not Snapshot
	mounts     []engine.Mount  // the toolbox, for Run
	toolbox    *toolbox.Record // what mounts is made of, for Image
	parent     *fsState        // the state the step builds on
	node       *dag.Node
	r          *run
}

// StartServices starts the services the view's test or run step runs
// beside, if they are not running yet, and waits until they are ready: a
// debugger's stop comes before they start.
func (v *NodeView) StartServices(ctx context.Context) error {
	if len(v.Services) == 0 {
		return nil
	}
	if err := v.r.startServices(ctx, v.node, false); err != nil {
		return fmt.Errorf("starting the services of %s: %w", v.Name, err)
	}
	return nil
}

// ServiceExec runs p in the container of the service called name that
// the view's test or run step runs beside, starting its services first
// if they are not running yet (a stop comes before they start), and
// waits for it.
func (v *NodeView) ServiceExec(ctx context.Context, name string, p engine.Process) (engine.Status, error) {
	for _, d := range v.node.Deps {
		s := v.r.svcs.byN[d]
		if s == nil || d.Service.Name != name {
			continue
		}
		if err := v.StartServices(ctx); err != nil {
			return engine.Status{}, err
		}
		s.mu.Lock()
		c := s.ctr
		s.mu.Unlock()
		if c == nil {
			return engine.Status{}, fmt.Errorf("service %s is not running", name)
		}
		return c.Exec(ctx, p)
	}
	if len(v.Services) == 0 {
		return engine.Status{}, fmt.Errorf("%s runs beside no service", v.Name)
	}
	return engine.Status{}, fmt.Errorf("%s runs beside no service %q: its services are %s", v.Name, name, strings.Join(v.Services, ", "))
}

// Image returns the view's filesystem as an image: its parent's layers
// and, for a failed step, the changes in its snapshot as one more layer;
// with the step's env, workdir and user, /bin/sh as its command, and
// labels naming the step. Tag it in the store to keep the failed step's
// state beyond Release (kiln debug attach opens a shell on it).
func (v *NodeView) Image(ctx context.Context) (v1.Image, error) {
	if v.parent == nil {
		return nil, fmt.Errorf("%s has no filesystem to keep", v.Node)
	}
	layers := append([]image.Layer(nil), v.parent.layers...)
	now := time.Now().UTC().Truncate(time.Second)
	if v.Snapshot != "" && !v.released {
		l, err := v.d.store.WriteLayer(ctx, func(w io.Writer) error { return v.Diff(ctx, w) })
		if err != nil {
			return nil, fmt.Errorf("keeping the changes of %s: %w", v.Name, err)
		}
		layers = append(layers, image.Layer{Layer: l, CreatedBy: v.Name + " (failed; kept by the debugger)", Created: now})
	}
	cfg := v.parent.config.Clone()
	cfg.Env, cfg.WorkingDir, cfg.User = v.Env, v.Workdir, v.User
	cfg.Entrypoint, cfg.Cmd = nil, []string{"/bin/sh"}
	cfg.Labels = map[string]string{}
	for k, val := range v.parent.config.Labels {
		cfg.Labels[k] = val
	}
	cfg.Labels[LabelDebugNode] = v.Node
	cfg.Labels[LabelDebugStep] = v.Name
	cfg.Labels[LabelDebugPos] = v.Pos.String()
	if v.Err != nil {
		cfg.Labels[LabelDebugError] = v.Err.Error()
	}
	delete(cfg.Labels, LabelDebugToolbox) // a kept base's
	if v.toolbox != nil {
		rec, err := v.toolbox.Encode()
		if err != nil {
			return nil, err
		}
		cfg.Labels[LabelDebugToolbox] = rec
	}
	return image.Assemble(v.parent.base, layers, cfg, now)
}

// The labels of an image a NodeView made.
const (
	LabelDebugNode  = "dev.kiln.debug.node"
	LabelDebugStep  = "dev.kiln.debug.step"
	LabelDebugPos   = "dev.kiln.debug.pos"
	LabelDebugError = "dev.kiln.debug.error"
	// LabelDebugToolbox holds the /.kiln of the step's debugger shell, a
	// toolbox.Record, for kiln debug attach to mount it again.
	LabelDebugToolbox = "dev.kiln.debug.toolbox"
)

// Diff writes, as an uncompressed OCI layer tar, the changes the view
// shows: a failed step's snapshot, else the layer named by Changes. It
// writes nothing when there are none.
func (v *NodeView) Diff(ctx context.Context, w io.Writer) error {
	if v.Snapshot != "" && !v.released {
		return v.d.sn.Diff(ctx, v.Snapshot, w, engine.DiffOptions{})
	}
	if v.changes == nil {
		return nil
	}
	rc, err := v.changes.Uncompressed()
	if err != nil {
		return fmt.Errorf("reading the layer of %s: %w", v.Changes, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// Lower returns the layer directories below the changes Diff writes,
// base first, to tell an added file from a modified one.
func (v *NodeView) Lower() []string {
	if v.Snapshot != "" && !v.released {
		return v.parentDirs
	}
	if len(v.Dirs) == 0 {
		return nil
	}
	return v.Dirs[:len(v.Dirs)-1]
}

// Mounted mounts the view's filesystem (or, with before, the step's
// parent's) read-only on a private mountpoint, calls fn with it, and
// unmounts it. No container runs. fn runs on a thread of its own mount
// namespace: it must not start goroutines that touch the root.
func (v *NodeView) Mounted(ctx context.Context, before bool, fn func(root string) error) error {
	mounts, _, err := v.rootfs(ctx, before, false)
	if err != nil {
		return err
	}
	return container.Mounted(v.d.tmp, [][]engine.Mount{mounts}, func(roots []string) error { return fn(roots[0]) })
}

// Run runs p in a throwaway container on the view's filesystem (or,
// with before, on the step's parent's) and waits for it. What p writes
// is thrown away at the next Run or at Release (on a failed step's
// snapshot: with the snapshot), unless the Inspector answers Commit.
func (v *NodeView) Run(ctx context.Context, p engine.Process, before bool) (engine.Status, error) {
	mounts, snap, err := v.rootfs(ctx, before, true)
	if err != nil {
		return engine.Status{}, err
	}
	v.dropShell(ctx)
	v.shell, v.shellOwned = snap, snap != v.Snapshot
	id := "dbg-" + randomSuffix()
	c, err := v.d.rt.Create(ctx, engine.Spec{ID: id, Rootfs: mounts, Mounts: v.mounts, Process: p, Network: v.d.network})
	if err != nil {
		return engine.Status{}, err
	}
	defer c.Delete(context.WithoutCancel(ctx)) //nolint:errcheck // the status matters more
	st, err := c.Wait(ctx)
	if err != nil {
		return st, err
	}
	return st, c.Delete(context.WithoutCancel(ctx))
}

// Release removes a failed step's snapshot and the last Run's. The
// executor releases the view after Before or After returns.
func (v *NodeView) Release(ctx context.Context) error {
	v.dropShell(ctx)
	if v.Snapshot == "" || v.released {
		return nil
	}
	v.released = true
	return v.d.sn.Remove(context.WithoutCancel(ctx), v.Snapshot)
}

// dropShell removes the snapshot of the last Run, unless it is the
// failed step's.
func (v *NodeView) dropShell(ctx context.Context) {
	if v.shellOwned {
		_ = v.d.sn.Remove(context.WithoutCancel(ctx), v.shell)
	}
	v.shell, v.shellOwned = "", false
}

// rootfs returns the mounts of the view's filesystem: read-only, or a
// writable snapshot, whose key it returns.
func (v *NodeView) rootfs(ctx context.Context, before, writable bool) ([]engine.Mount, string, error) {
	if !before && v.Snapshot != "" && !v.released {
		m, err := v.d.sn.Mounts(ctx, v.Snapshot)
		return m, v.Snapshot, err
	}
	dirs := v.Dirs
	if before && v.Snapshot == "" && len(v.parentDirs) > 0 || before && v.Snapshot != "" {
		dirs = v.parentDirs
	}
	dirs, err := v.d.store.Stack(ctx, uniqueDirs(dirs), v.d.maxStack)
	if err != nil {
		return nil, "", err
	}
	if !writable {
		return readOnly(dirs), "", nil
	}
	key := "dbg-" + randomSuffix()
	m, err := v.d.sn.Prepare(ctx, key, dirs)
	if err != nil {
		return nil, "", err
	}
	return m, key, nil
}

// debugRun is the executor's side of an Inspector: it keeps the
// snapshots of failed steps and the exit codes of their containers.
type debugRun struct {
	in       Inspector
	store    *store.Store
	sn       engine.Snapshotter // the build's own, unwrapped
	rt       engine.Runtime
	tmp      string
	network  engine.Network
	maxStack int

	mu      sync.Mutex
	holding map[string]bool             // snapshot key prefixes whose removal waits
	held    map[string]string           // prefix → the last snapshot kept
	status  map[string]engine.Status    // container ID → how it ended
	layers  map[*dag.Node]image.Layer   // the last layer a step added, for the next stop's diff
	onTop   map[*dag.Node]v1.Layer      // a shell's changes committed before the step, to add after it
	noStop  map[*dag.Node]bool          // retried or edited: run without stopping
	outputs map[string]*strings.Builder // node → its output (bounded)
	keys    map[string]string           // node → its cache key
}

// newDebug wraps r's snapshotter, runtime and observer when its
// observer is an Inspector, and returns nil otherwise.
func newDebug(r *run) *debugRun {
	in, ok := r.opts.Observer.(Inspector)
	if !ok {
		return nil
	}
	d := &debugRun{
		in: in, store: r.opts.Store, sn: r.opts.Snapshotter, rt: r.opts.Runtime, tmp: r.opts.Tmp, network: r.opts.Network, maxStack: cmp.Or(r.opts.MaxStack, store.MaxStack),
		holding: map[string]bool{}, held: map[string]string{}, status: map[string]engine.Status{},
		layers: map[*dag.Node]image.Layer{}, onTop: map[*dag.Node]v1.Layer{}, noStop: map[*dag.Node]bool{}, outputs: map[string]*strings.Builder{},
		keys: map[string]string{},
	}
	ks := &keepingSnapshotter{Snapshotter: r.opts.Snapshotter, d: d}
	r.opts.Snapshotter = ks
	if c, ok := ks.Snapshotter.(engine.Committer); ok {
		r.opts.Snapshotter = &keepingCommitter{keepingSnapshotter: ks, c: c}
	}
	r.opts.Runtime = &statusRuntime{Runtime: r.opts.Runtime, d: d}
	r.obs = &outputObserver{Observer: r.obs, d: d}
	return d
}

// snapshotPrefix is what every snapshotKey(n) starts with.
func snapshotPrefix(n *dag.Node) string {
	k := snapshotKey(n)
	return k[:len(k)-len(randomSuffix())]
}

// keepingSnapshotter postpones the removal of the snapshots of the steps
// being watched, so that a failed step's can be inspected.
type keepingSnapshotter struct {
	engine.Snapshotter
	d *debugRun
}

func (s *keepingSnapshotter) Remove(ctx context.Context, key string) error {
	s.d.mu.Lock()
	for p := range s.d.holding {
		if strings.HasPrefix(key, p) {
			if old := s.d.held[p]; old != "" && old != key {
				defer s.Snapshotter.Remove(ctx, old) //nolint:errcheck // swept later otherwise
			}
			s.d.held[p] = key
			s.d.mu.Unlock()
			return nil
		}
	}
	s.d.mu.Unlock()
	return s.Snapshotter.Remove(ctx, key)
}

// keepingCommitter is a keepingSnapshotter that passes engine.Committer
// through.
type keepingCommitter struct {
	*keepingSnapshotter
	c engine.Committer
}

func (s *keepingCommitter) Writable(ctx context.Context, key string) (string, error) {
	return s.c.Writable(ctx, key)
}

// statusRuntime notes how each container ended.
type statusRuntime struct {
	engine.Runtime
	d *debugRun
}

// NewPod makes a pod with the runtime it wraps: without it, a debugged
// build's services had no pod.
func (rt *statusRuntime) NewPod(ctx context.Context) (engine.Pod, error) {
	pr, ok := rt.Runtime.(engine.PodRuntime)
	if !ok {
		return nil, errors.New("the container runtime has no pods")
	}
	return pr.NewPod(ctx)
}

func (rt *statusRuntime) Create(ctx context.Context, spec engine.Spec) (engine.Container, error) {
	c, err := rt.Runtime.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &statusContainer{Container: c, d: rt.d}, nil
}

type statusContainer struct {
	engine.Container
	d *debugRun
}

func (c *statusContainer) Wait(ctx context.Context) (engine.Status, error) {
	st, err := c.Container.Wait(ctx)
	if err == nil {
		c.d.mu.Lock()
		c.d.status[c.ID()] = st
		c.d.mu.Unlock()
	}
	return st, err
}

// outputObserver keeps the end of each node's output, and its cache
// key.
type outputObserver struct {
	fsm.Observer
	d *debugRun
}

func (o *outputObserver) Event(e fsm.Event) {
	if e.CacheKey != "" {
		o.d.mu.Lock()
		o.d.keys[e.Node] = e.CacheKey
		o.d.mu.Unlock()
	}
	o.Observer.Event(e)
}

const outputKeep = 64 << 10

func (o *outputObserver) Output(node string, p []byte) {
	o.Observer.Output(node, p)
	o.d.mu.Lock()
	b := o.d.outputs[node]
	if b == nil {
		b = &strings.Builder{}
		o.d.outputs[node] = b
	}
	b.Write(p)
	if b.Len() > 2*outputKeep {
		s := b.String()[b.Len()-outputKeep:]
		b.Reset()
		b.WriteString(s)
	}
	o.d.mu.Unlock()
}

// output returns the last lines of node's output.
func (d *debugRun) output(node string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.outputs[node]
	if b == nil {
		return ""
	}
	return b.String()
}

// view describes step n, about to run on st.
func (r *run) view(ctx context.Context, n *dag.Node, st *fsState, key string) *NodeView {
	v := &NodeView{
		Node: n.Key, Name: n.Name, Stage: n.Stage.Name, Index: n.Index,
		Env: st.config.Env, Workdir: st.config.WorkingDir, User: st.config.User, CacheKey: key,
		Dirs: st.dirs, parentDirs: st.dirs, d: r.debug, ExitCode: -1, Graph: r.g, parent: st,
		node: n, r: r,
	}
	for _, d := range n.Deps {
		if d.Kind == dag.KindService {
			v.Services = append(v.Services, d.Service.Name)
		}
	}
	switch s := n.Step; {
	case s != nil:
		v.Name, v.Pos, v.Kind = s.Name, s.Pos, s.Kind
		if s.Run != nil {
			v.Command = s.Run.Args()
			v.Env = runEnv(st.config.Env, s.RunEnv)
		}
	case n.Test != nil:
		v.Pos, v.Command, v.Test = n.Test.Pos, n.Test.Run.Args(), true
	}
	// The shell gets the toolbox and the values; without them (a bad
	// entry) it still runs.
	v.mounts, _ = r.toolboxMounts(ctx, n.Stage, []string{"kiln"})
	v.toolbox, _ = r.toolboxRecord(ctx, n.Stage)
	r.debug.mu.Lock()
	if l, ok := r.debug.layers[n.Parent]; ok {
		v.changes, v.Changes = l.Layer, l.CreatedBy
	}
	r.debug.mu.Unlock()
	return v
}

// beforeStep asks the Inspector what to do with step n, whose key is
// known. It returns stop when the step must end now with st and err.
func (r *run) beforeStep(ctx context.Context, n *dag.Node, m *fsm.Machine, st *fsState, key cache.Key) (*fsState, bool, error) {
	r.debug.mu.Lock()
	quiet := r.debug.noStop[n]
	delete(r.debug.noStop, n)
	r.debug.mu.Unlock()
	if quiet {
		return nil, false, nil
	}
	v := r.view(ctx, n, st, key.String())
	defer v.Release(ctx) //nolint:errcheck // swept later otherwise
	act, err := r.inspect(ctx, n, func() Action { return r.debug.in.Before(ctx, v) })
	if err != nil {
		return nil, true, err
	}
	switch act.Kind {
	case Commit:
		// The step runs, then debugStep adds the shell's changes.
		l, err := r.shellLayer(ctx, n, v)
		if err != nil {
			return nil, true, err
		}
		r.debug.mu.Lock()
		r.debug.onTop[n] = l
		r.debug.mu.Unlock()
		return nil, false, nil
	case Skip:
		return st, true, m.To(ctx, fsm.Cached, nil)
	case Abort:
		return nil, true, ErrAborted
	case Edit:
		if err := editStep(n, act.Command); err != nil {
			return nil, true, err
		}
		r.debug.mu.Lock()
		r.debug.noStop[n] = true
		r.debug.mu.Unlock()
		return r.runStepAgain(ctx, n, m)
	}
	return nil, false, nil
}

// inspect calls the Inspector without holding n's job: a stopped step
// (or one held while another is) must not keep the others from running.
func (r *run) inspect(ctx context.Context, n *dag.Node, call func() Action) (Action, error) {
	j := r.jobs[n]
	j.release()
	act := call()
	return act, j.acquire(ctx)
}

// commitShell makes the changes of v's last Run the layer of step n,
// whose key is key, on top of st. The layer is not put in the cache
// under key: the state's key becomes a digest of key and the layer's
// DiffID, so the steps after it are cached under keys no normal build
// computes, and a later build runs n again.
func (r *run) commitShell(ctx context.Context, n *dag.Node, m *fsm.Machine, st *fsState, v *NodeView, key cache.Key) (*fsState, error) {
	for _, to := range []fsm.State{fsm.Creating, fsm.Running, fsm.Committing} {
		if err := m.To(ctx, to, nil); err != nil {
			return nil, err
		}
	}
	l, err := r.shellLayer(ctx, n, v)
	if err != nil {
		return nil, err
	}
	st, err = r.addShellLayer(ctx, n, st, key, l, n.Step.Name+" (committed from a debugger shell in place of the step)")
	if err != nil {
		return nil, err
	}
	m.SetCacheKey(st.key.String())
	return st, m.To(ctx, fsm.Done, nil)
}

// shellLayer writes the changes of v's last Run, a shell at a stop at
// step n, as a layer in the store.
func (r *run) shellLayer(ctx context.Context, n *dag.Node, v *NodeView) (v1.Layer, error) {
	if v.shell == "" {
		return nil, fmt.Errorf("committing %s: no shell ran", n.Name)
	}
	l, err := r.opts.Store.WriteLayer(ctx, func(w io.Writer) error {
		return r.debug.sn.Diff(ctx, v.shell, w, engine.DiffOptions{SourceDateEpoch: r.epoch})
	})
	if err != nil {
		return nil, fmt.Errorf("committing the debugger's shell at %s: %w", n.Name, err)
	}
	return l, nil
}

// addShellLayer returns st with layer l, a debugger shell's changes
// committed at step n, on top, described as createdBy: its key is
// derived from key, the key of what st was before, and l's DiffID (a key
// no build that runs the step computes).
func (r *run) addShellLayer(ctx context.Context, n *dag.Node, st *fsState, key cache.Key, l v1.Layer, createdBy string) (*fsState, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	st = st.clone()
	if err := r.addLayer(ctx, st, cachedLayer{l, time.Now()}, createdBy); err != nil {
		return nil, err
	}
	st.key = cache.ComputeKey(cache.KeyInput{Parent: key, Kind: "debugger-commit", Inputs: []v1.Hash{diffID}})
	r.debug.mu.Lock()
	r.debug.layers[n] = st.layers[len(st.layers)-1]
	r.debug.mu.Unlock()
	return st, nil
}

// takeOnTop adds to st, the state step n made, the shell's changes
// committed at the stop before n, if there are.
func (r *run) takeOnTop(ctx context.Context, n *dag.Node, st *fsState) (*fsState, error) {
	r.debug.mu.Lock()
	l := r.debug.onTop[n]
	delete(r.debug.onTop, n)
	r.debug.mu.Unlock()
	if l == nil || r.opts.DryRun {
		return st, nil
	}
	return r.addShellLayer(ctx, n, st, st.key, l,
		fmt.Sprintf("debugger shell at the stop before %q, committed on top of it", n.Step.Name))
}

// beforeTest lets the Inspector hold test n, or stop before it, once its
// key is known: a test can only go on or be aborted.
func (r *run) beforeTest(ctx context.Context, n *dag.Node, st *fsState, key cache.Key) error {
	v := r.view(ctx, n, st, key.String())
	defer v.Release(ctx) //nolint:errcheck // swept later otherwise
	act, err := r.inspect(ctx, n, func() Action { return r.debug.in.Before(ctx, v) })
	if err != nil {
		return err
	}
	if act.Kind == Abort {
		return ErrAborted
	}
	return nil
}

// runStepAgain runs n again from the start, from checking-cache.
func (r *run) runStepAgain(ctx context.Context, n *dag.Node, m *fsm.Machine) (*fsState, bool, error) {
	st, err := r.runStep(ctx, n, m)
	return st, true, err
}

// editStep replaces run step n's command, for this build only.
func editStep(n *dag.Node, command string) error {
	if n.Step.Kind != manifest.StepRun {
		return fmt.Errorf("editing %s: only a run step's command can be edited", n.Name)
	}
	s := *n.Step
	s.Run = &manifest.Command{Shell: command}
	s.Name = "run: " + command
	n.Step = &s
	return nil
}

// debugStep runs step n, with the Inspector's After on its result, as
// often as the Inspector retries it.
func (r *run) debugStep(ctx context.Context, n *dag.Node, m *fsm.Machine) (*fsState, error) {
	if r.debug == nil {
		return r.runStep(ctx, n, m)
	}
	d := r.debug
	prefix := snapshotPrefix(n)
	d.mu.Lock()
	d.holding[prefix] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.onTop, n) // the step did not end well: no layer to put on it
		delete(d.holding, prefix)
		kept := d.held[prefix]
		delete(d.held, prefix)
		d.mu.Unlock()
		if kept != "" {
			_ = d.sn.Remove(context.WithoutCancel(ctx), kept)
		}
	}()
	for {
		d.mu.Lock()
		delete(d.outputs, n.Key) // the output of this run only
		d.mu.Unlock()
		parent := r.state(n.Parent)
		st, err := r.runStep(ctx, n, m)
		if ctx.Err() != nil || errors.Is(err, ErrAborted) {
			return st, err
		}
		if err == nil {
			st, err = r.takeOnTop(ctx, n, st)
		}
		var v *NodeView
		if parent != nil {
			v = r.view(ctx, n, parent, "")
		} else {
			v = &NodeView{Node: n.Key, Name: n.Step.Name, Pos: n.Step.Pos, d: d, ExitCode: -1, Graph: r.g}
		}
		d.mu.Lock()
		v.CacheKey = d.keys[n.Key]
		d.mu.Unlock()
		v.Output = lastLines(d.output(n.Key), 10)
		v.Err = err
		v.changes, v.Changes = nil, ""
		d.mu.Lock()
		v.Snapshot = d.held[prefix]
		delete(d.held, prefix)
		if s, ok := d.status[v.Snapshot]; ok {
			v.ExitCode = s.Code
		}
		d.mu.Unlock()
		if err == nil {
			v.Cached = m.State() == fsm.Cached
			if v.Snapshot != "" {
				// A committed overlay snapshot was emptied into the layer.
				_ = d.sn.Remove(context.WithoutCancel(ctx), v.Snapshot)
				v.Snapshot = ""
			}
			v.Dirs = st.dirs
			if parent != nil && len(st.layers) > len(parent.layers) {
				l := st.layers[len(st.layers)-1]
				v.changes, v.Changes = l.Layer, l.CreatedBy
				d.mu.Lock()
				d.layers[n] = l
				d.mu.Unlock()
			}
		}
		act, jerr := r.inspect(ctx, n, func() Action { return d.in.After(ctx, v) })
		if act.Kind == Commit && err != nil && jerr == nil {
			if !m.State().Final() {
				_ = m.To(ctx, fsm.Failed, err)
			}
			if terr := m.To(ctx, fsm.CheckingCache, nil); terr != nil {
				_ = v.Release(ctx)
				return nil, errors.Join(err, terr)
			}
			key, kerr := cache.ParseKey(v.CacheKey)
			if kerr != nil {
				_ = v.Release(ctx)
				return nil, errors.Join(err, kerr)
			}
			st, err := r.commitShell(ctx, n, m, parent, v, key)
			_ = v.Release(ctx)
			return st, err
		}
		_ = v.Release(ctx)
		if jerr != nil {
			return nil, errors.Join(err, jerr)
		}
		if err == nil {
			return st, nil
		}
		switch act.Kind {
		case Retry, Edit, Skip:
			if act.Kind == Edit {
				if eerr := editStep(n, act.Command); eerr != nil {
					return nil, errors.Join(err, eerr)
				}
			}
			if !m.State().Final() {
				_ = m.To(ctx, fsm.Failed, err)
			}
			if terr := m.To(ctx, fsm.CheckingCache, nil); terr != nil {
				return nil, errors.Join(err, terr)
			}
			if act.Kind == Skip {
				return parent.clone(), m.To(ctx, fsm.Cached, nil)
			}
			d.mu.Lock()
			d.noStop[n] = true
			d.mu.Unlock()
			continue
		case Abort:
			return nil, fmt.Errorf("%w: %w", ErrAborted, err)
		}
		return st, err
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
