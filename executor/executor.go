package executor

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/image"
	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
)

// Options are what a build runs with.
type Options struct {
	Store       *store.Store
	Cache       *cache.Cache
	Snapshotter engine.Snapshotter
	Runtime     engine.Runtime
	Context     *buildctx.Context
	// Tmp is a directory for mountpoints, on the same machine.
	Tmp string
	// Base resolves a stage's base image reference; it returns nil for
	// scratch.
	Base func(ctx context.Context, ref string) (v1.Image, error)
	// Jobs is how many nodes do kiln's own work at once (cache lookups,
	// copies, commits); the default is the number of CPUs. A node gives
	// up its job while its container runs: the step's process is not
	// kiln's work, and may well be waiting (a download, a sleep).
	Jobs int
	// Containers is how many containers run at once; the default is
	// 4 × Jobs.
	Containers int
	// KeepGoing lets independent branches finish after a failure.
	KeepGoing bool
	// NoCache runs every step; NoCacheFilter runs the steps whose key
	// or name is listed (and, through their keys, those after them).
	NoCache       bool
	NoCacheFilter []string
	Observer      fsm.Observer
	// SourceDateEpoch, when set, dates the image and its history and
	// clamps the layers' timestamps, for reproducible digests.
	SourceDateEpoch *time.Time
	// Network is the network of run steps and tests; the default is host.
	Network engine.Network
	// Limits bound every run step's and test's container, and Timeout
	// all of every node's own work (see nodeContext), unless the step
	// sets its own (manifest.Step.Limits, Test.Timeout).
	// The defaults are the runtime's: 2048 processes, no memory or time
	// limit.
	Limits  engine.Limits
	Timeout time.Duration
	// Secrets are the values of secret mounts, by ID. They reach only the
	// steps that mount them: never a layer, the image, the history or a
	// cache key.
	Secrets map[string][]byte
	// Remote, when set, is asked for a step's key when Cache lacks it;
	// see Remote.
	Remote Remote
	// KilnBinary is kiln's static binary, mounted at /.kiln/bin/kiln in
	// every run step's and test's container with the template values
	// and the stages' toolbox: entries (see package toolbox and
	// toolbox.go). The default, "", mounts /.kiln only for stages with a
	// toolbox.
	KilnBinary string
	// MaxStack is how many layer directories a snapshot stacks before
	// its bottom ones are merged (store.Stack); 0 means store.MaxStack.
	MaxStack int
	// Precompress, when set, starts compressing each step's layer (as
	// gzip) in the background as soon as the step commits it, for an
	// export or push to come: the build does not wait for it, and what
	// exports waits only for what is not done yet (store.Recompress).
	// It runs under the context given to Build, past Build's end, until
	// done or cancelled by Store.Close.
	Precompress bool
	// DryRun computes every node's key without running anything: each
	// node ends Cached, Result.Inputs[key].Hit says whether its key is
	// in the cache, and Result.Image is nil. Snapshotter and Runtime may
	// be nil.
	DryRun bool
	// Slots, when set, are the job and container slots in place of Jobs
	// and Containers: shared with builds running at once.
	Slots *Slots
	// BaseFor, when set, resolves a stage's base for the stage's
	// platform in place of Base (a multi-platform build, or --platform).
	BaseFor func(ctx context.Context, ref string, p platform.Platform) (v1.Image, error)
}

// defaults fills in the defaults of Jobs, Containers and Network.
func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Containers <= 0 {
		o.Containers = 4 * o.Jobs
	}
	if o.Network == "" {
		o.Network = engine.NetworkHost
	}
}

// TestResult is how one test branch went.
type TestResult struct {
	Name     string
	Stage    string
	Node     string
	Pos      manifest.Pos
	Passed   bool
	Cached   bool // it passed on the same filesystem before, and did not run
	Code     int
	Duration time.Duration
	Output   string // the last lines of its output, stdout and stderr as they came
	Stdout   string // the last lines of its stdout alone
	Stderr   string // the last lines of its stderr alone
	Err      error
	// Skipped says why the test never ended, when it did not: it was
	// cancelled, before or while it ran, because the build failed or was
	// interrupted. Passed is false.
	Skipped string
}

// Failure is a step (or a stage's base) that failed; failed tests are in
// Result.Tests.
type Failure struct {
	Node, Name, Stage string
	Pos               manifest.Pos // where the user wrote it
	Duration          time.Duration
	Output            string // the last lines of its output, stdout and stderr as they came
	Stdout, Stderr    string // the last lines of each alone
	Err               error
}

// Result is what a build made.
type Result struct {
	Image  v1.Image
	Tests  []TestResult
	Failed []Failure            // in the order they failed
	States map[string]fsm.State // by node key
	// Inputs are what each node's cache key covers, by node key, for the
	// nodes that got as far as computing one.
	Inputs map[string]NodeInputs
}

// fsState is a node's filesystem and config, as its dependents see them.
type fsState struct {
	base   v1.Image      // the stage's base image; nil for scratch
	layers []image.Layer // the layers steps added on top of base
	dirs   []string      // every layer's directory, base first
	config image.Config
	key    cache.Key
}

func (s *fsState) clone() *fsState {
	c := *s
	c.layers = append([]image.Layer(nil), s.layers...)
	c.dirs = append([]string(nil), s.dirs...)
	c.config = s.config.Clone()
	return &c
}

// run is one build in progress.
type run struct {
	opts  Options
	b     *manifest.Build
	g     *dag.Graph
	obs   fsm.Observer
	sem   chan struct{} // a job: one per node doing kiln's own work
	ctrs  chan struct{} // one per running container
	epoch *time.Time

	mu       sync.Mutex
	states   map[*dag.Node]*fsState
	machines map[*dag.Node]*fsm.Machine
	jobs     map[*dag.Node]*job // read-only once the nodes start
	tests    []TestResult
	failures []Failure
	done     map[*dag.Node]chan struct{}
	failed   map[*dag.Node]bool
	// downloads are what copy steps' URLs fetched, until the step ends.
	downloads map[*dag.Node]*downloaded
	debug     *debugRun // with an Inspector; see debug.go
	tb        toolboxState
	inputs    map[*dag.Node]*NodeInputs
	// unpacks are the layers found in the cache whose directories are
	// not unpacked yet, by directory; see layerDir.
	unpacks sync.Map
	// damaged holds the cache keys whose records were found damaged
	// (cache.Key → true): a step looks its key up twice, and says so once.
	damaged sync.Map
	early   earlyDigests // see prefetch.go
	// bg runs what a step leaves in the background (its layer's
	// compression and cache record), under bgCtx, the build's context;
	// Build waits for it.
	bg    sync.WaitGroup
	bgCtx context.Context
	bgErr func(error)
	// outer is the context given to Build, under which Precompress runs.
	outer context.Context
	svcs  services // see services.go
}

// stack returns the layer directories dirs, base first, ready to stack:
// without repeats, and with the bottom ones merged past opts.MaxStack.
func (r *run) stack(ctx context.Context, dirs []string) ([]string, error) {
	return r.opts.Store.Stack(ctx, uniqueDirs(dirs), cmp.Or(r.opts.MaxStack, store.MaxStack))
}

// background runs fn beside the build; its error fails the build.
func (r *run) background(fn func() error) {
	r.bg.Go(func() {
		if err := fn(); err != nil {
			r.bgErr(err)
		}
	})
}

// Build runs the nodes of g that the target needs, and assembles the
// image. The first failure cancels the rest, unless KeepGoing; a failed
// test fails the build, after the other tests have ended.
func Build(ctx context.Context, b *manifest.Build, g *dag.Graph, opts Options) (*Result, error) {
	opts.defaults()
	r := &run{
		opts: opts, b: b, g: g, obs: opts.Observer, epoch: opts.SourceDateEpoch,
		sem:       make(chan struct{}, opts.Jobs),
		ctrs:      make(chan struct{}, opts.Containers),
		states:    map[*dag.Node]*fsState{},
		machines:  map[*dag.Node]*fsm.Machine{},
		jobs:      map[*dag.Node]*job{},
		done:      map[*dag.Node]chan struct{}{},
		failed:    map[*dag.Node]bool{},
		downloads: map[*dag.Node]*downloaded{},
		inputs:    map[*dag.Node]*NodeInputs{},
	}
	if opts.Slots != nil {
		r.sem, r.ctrs = opts.Slots.jobs, opts.Slots.ctrs
	}
	if r.obs == nil {
		r.obs = fsm.Observers(nil)
	}
	r.debug = newDebug(r)
	defer r.dropToolbox()
	nodes := g.Needed()
	r.initServices(nodes)
	defer r.svcs.removing.Wait() // after endServices
	defer r.endServices(context.WithoutCancel(ctx))
	for _, n := range nodes {
		kind := fsm.Step
		switch n.Kind {
		case dag.KindTest:
			kind = fsm.Test
		case dag.KindService:
			kind = fsm.Service
		}
		r.machines[n] = fsm.New(n.Key, n.Name, kind, r.obs)
		r.done[n] = make(chan struct{})
		r.jobs[n] = &job{sem: r.sem}
	}

	r.outer = ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	earlyCtx, stopEarly := context.WithCancel(ctx)
	r.startEarlyDigests(earlyCtx, nodes)
	r.startPreload(earlyCtx, nodes)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	r.bgCtx = ctx
	r.bgErr = func(err error) {
		if ctx.Err() != nil {
			return // the build stopped for another reason: its own error says why
		}
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		if !opts.KeepGoing {
			cancel(err)
		}
	}
	for _, n := range nodes {
		wg.Add(1)
		go func(n *dag.Node) {
			defer wg.Done()
			defer close(r.done[n])
			err := r.runNode(ctx, n)
			if err == nil {
				return
			}
			r.mu.Lock()
			r.failed[n] = true
			r.mu.Unlock()
			if errors.Is(err, errDependencyFailed) {
				return
			}
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
			// A failed test does not stop the other tests; anything else
			// (a service that never got ready included) stops the build
			// unless told to keep going.
			var sf *serviceFailed
			if (n.Kind != dag.KindTest || errors.As(err, &sf)) && !opts.KeepGoing {
				cancel(err)
			}
		}(n)
	}
	wg.Wait()
	r.bg.Wait()
	stopEarly()
	r.early.wg.Wait()
	r.endServices(context.WithoutCancel(ctx))

	r.skipTests(ctx, nodes, errs)
	res := &Result{Tests: r.tests, Failed: r.failures, States: map[string]fsm.State{}}
	for n, m := range r.machines {
		res.States[n.Key] = m.State()
	}
	res.Inputs = map[string]NodeInputs{}
	r.mu.Lock()
	for n, in := range r.inputs {
		res.Inputs[n.Key] = *in
	}
	r.mu.Unlock()
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return res, err
	}
	if opts.DryRun {
		return res, nil
	}
	img, err := r.assemble(g.Target())
	if err == nil {
		img, err = r.withPlatform(img)
	}
	if err != nil {
		return res, err
	}
	res.Image = img
	return res, nil
}

var errDependencyFailed = errors.New("a dependency failed")

// IsStepFailure reports whether err, from Build, says that a step's or a
// test's process failed (exited non-zero, was killed, ran out of time or
// memory), as opposed to wrong input or kiln's own trouble.
func IsStepFailure(err error) bool {
	var se *stepError
	return errors.As(err, &se)
}

// skipTests adds a skipped result for each test of nodes that never
// ended, saying why: errs (the build's failures, first first) or an
// interrupted ctx.
func (r *run) skipTests(ctx context.Context, nodes []*dag.Node, errs []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ended := map[string]bool{}
	for _, t := range r.tests {
		ended[t.Node] = true
	}
	why := "not run: the build was cancelled"
	if len(errs) > 0 {
		why = "not run: the build failed: " + strings.SplitN(errs[0].Error(), "\n", 2)[0]
	} else if ctx.Err() != nil {
		why = "not run: the build was interrupted"
	}
	for _, n := range nodes {
		if n.Kind == dag.KindTest && !ended[n.Key] {
			r.tests = append(r.tests, TestResult{Name: n.Test.Name, Stage: n.Stage.Name, Node: n.Key, Pos: n.Test.Pos, Skipped: why})
		}
	}
}

// addFailure notes that n, a step, base or service, failed with err after d.
func (r *run) addFailure(n *dag.Node, d time.Duration, err error) {
	f := Failure{Node: n.Key, Name: n.Name, Stage: n.Stage.Name, Pos: n.Stage.Pos, Duration: d, Err: err}
	switch {
	case n.Service != nil:
		f.Pos = n.Service.Pos
	case n.Step != nil:
		f.Pos = n.Step.Pos
	}
	var se *stepError
	if errors.As(err, &se) {
		f.Output, f.Stdout, f.Stderr = se.output, se.stdout, se.stderr
	}
	r.mu.Lock()
	r.failures = append(r.failures, f)
	r.mu.Unlock()
}

// runNode waits for n's dependencies, then runs it through its life.
func (r *run) runNode(ctx context.Context, n *dag.Node) error {
	m := r.machines[n]
	defer r.dropDownloads(n)
	if n.Kind == dag.KindTest || n.Kind == dag.KindStep {
		// Its services stop after it, however it ends.
		defer r.releaseServices(context.WithoutCancel(ctx), n)
	}
	for _, d := range n.Deps {
		select {
		case <-r.done[d]:
		case <-ctx.Done():
			_ = m.To(ctx, fsm.Cancelled, context.Cause(ctx))
			return errDependencyFailed
		}
		r.mu.Lock()
		bad := r.failed[d]
		r.mu.Unlock()
		if bad {
			_ = m.To(ctx, fsm.Cancelled, errDependencyFailed)
			return errDependencyFailed
		}
	}
	j := r.jobs[n]
	if err := j.acquire(ctx); err != nil {
		_ = m.To(ctx, fsm.Cancelled, context.Cause(ctx))
		return errDependencyFailed
	}
	defer j.release()
	if n.Kind != dag.KindService {
		if err := m.To(ctx, fsm.CheckingCache, nil); err != nil {
			return err
		}
	}
	nctx, stop := r.nodeContext(ctx, n)
	defer stop()
	begin := time.Now()
	var st *fsState
	var err error
	switch n.Kind {
	case dag.KindBase:
		st, err = r.runBase(nctx, n, m)
	case dag.KindStep:
		st, err = r.debugStep(nctx, n, m)
	case dag.KindTest:
		err = r.runTest(nctx, n, m)
	case dag.KindService:
		err = r.runService(nctx, n, m)
	}
	if err != nil && ctx.Err() == nil && nctx.Err() != nil {
		if cause := context.Cause(nctx); !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
	}
	if sf := (*serviceFailed)(nil); errors.As(err, &sf) || errors.Is(err, errDependencyFailed) {
		// It did not run: a service it needs failed, and says why.
		_ = m.To(ctx, fsm.Cancelled, err)
		return err
	}
	if err != nil {
		to := fsm.Failed
		if ctx.Err() != nil {
			to = fsm.Cancelled
		}
		_ = m.To(ctx, to, err)
		if to == fsm.Cancelled {
			return errDependencyFailed
		}
		if n.Kind != dag.KindTest {
			r.addFailure(n, time.Since(begin), err)
		}
		return err
	}
	if st != nil {
		r.mu.Lock()
		r.states[n] = st
		r.mu.Unlock()
	}
	return nil
}

// nodeContext bounds all of n's own work by its timeout (the step's or
// test's own, else the build's): resolving and unpacking its base, cache
// lookups and the wait on its key's lock, its container, copy and
// commit. The waits for its dependencies and a job are not its own. A
// build under a debugger, which may stop at any node, has no such bound.
func (r *run) nodeContext(ctx context.Context, n *dag.Node) (context.Context, context.CancelFunc) {
	_, to := r.limitsFor(n)
	if to <= 0 || r.debug != nil {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, to, &TimeoutError{Limit: to})
}

// TimeoutError is why a node or a phase of the build was ended: it ran
// past its timeout.
type TimeoutError struct{ Limit time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("it ran past its timeout of %s (set timeout: on the step, or --timeout)", e.Limit)
}

// job is a node's hold on one of the build's Jobs.
type job struct {
	sem  chan struct{}
	held bool
}

func (j *job) acquire(ctx context.Context) error {
	if j.held {
		return nil
	}
	select {
	case j.sem <- struct{}{}:
		j.held = true
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (j *job) release() {
	if j.held {
		<-j.sem
		j.held = false
	}
}

// whileContainer runs fn, which starts a container and waits for it, in
// one of the build's container slots instead of the node's job: a node
// never holds both while it waits, so the two bounds cannot deadlock.
func (r *run) whileContainer(ctx context.Context, j *job, fn func() error) error {
	j.release()
	select {
	case r.ctrs <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	err := fn()
	<-r.ctrs
	if jerr := j.acquire(ctx); jerr != nil && err == nil {
		err = jerr
	}
	return err
}

// state returns the filesystem state a finished node left.
func (r *run) state(n *dag.Node) *fsState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.states[n]
}

// stepError is a failed step or test, with where the user wrote it and
// the end of its output.
type stepError struct {
	what           string // "step" or "test"
	name           string
	pos            manifest.Pos
	err            error
	output         string // stdout and stderr as they came
	stdout, stderr string // each alone
	services       string // the last output of a test's services, when it failed
}

func (e *stepError) Error() string {
	var b strings.Builder
	if p := e.pos.String(); p != "" {
		b.WriteString(p + ": ")
	}
	fmt.Fprintf(&b, "%s %q failed: %v", e.what, e.name, e.err)
	if out := strings.TrimRight(e.output, "\n"); out != "" {
		b.WriteString("\n  last output:\n    " + strings.ReplaceAll(out, "\n", "\n    "))
	}
	b.WriteString(e.services)
	return b.String()
}

func (e *stepError) Unwrap() error { return e.err }

// tail keeps the last lines written to it, and passes everything on to
// an observer. The values of the build's secrets are masked in both:
// output is then passed on line by line (flush passes the rest), so that
// a secret is never cut in two between writes. A tail made waiting holds
// what is written back until start: a container's process starts, and
// may print, before its node is running.
type tail struct {
	node    string
	obs     fsm.Observer
	secrets [][]byte
	mu      sync.Mutex // held while passing output on, which keeps it in order
	buf     []byte
	pending []byte // with secrets: the line not yet ended
	waiting bool   // until start: output is held back, in held
	held    []byte
}

const tailBytes = 4096

// newTail returns the output of node n's process, held back until its
// node is running (see start).
func (r *run) newTail(n *dag.Node) *tail {
	return &tail{node: n.Key, obs: r.obs, secrets: r.secretLines(), waiting: true}
}

// output is what a node's process prints: all of it in one tail, in the
// order it came, passed on to the observer; and stdout and stderr each in
// a tail of its own, for reports.
type output struct {
	all, stdout, stderr *tail
	outW, errW          io.Writer // the process's stdout and stderr
}

// newOutput returns the output of node n's process.
func (r *run) newOutput(n *dag.Node) *output {
	o := &output{all: r.newTail(n)}
	o.stdout = &tail{node: n.Key, obs: fsm.Observers(nil), secrets: o.all.secrets}
	o.stderr = &tail{node: n.Key, obs: fsm.Observers(nil), secrets: o.all.secrets}
	o.outW, o.errW = io.MultiWriter(o.all, o.stdout), io.MultiWriter(o.all, o.stderr)
	return o
}

// flush flushes the tails: call it when the process has ended.
func (o *output) flush() {
	o.all.flush()
	o.stdout.flush()
	o.stderr.flush()
}

// failed returns the failure of the process, err, with what it printed.
func (o *output) failed(what, name string, pos manifest.Pos, err error) *stepError {
	return &stepError{what: what, name: name, pos: pos, err: err, output: o.all.String(), stdout: o.stdout.String(), stderr: o.stderr.String()}
}

// secretLines returns what to mask: each line of each secret, of at least
// 3 bytes (masking shorter strings would mangle every log).
func (r *run) secretLines() [][]byte {
	var out [][]byte
	for _, v := range r.opts.Secrets {
		for _, l := range bytes.Split(v, []byte("\n")) {
			if l = bytes.TrimRight(l, "\r"); len(l) >= 3 {
				out = append(out, l)
			}
		}
	}
	// Longest first, so a secret containing another is masked whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

var masked = []byte("****")

func (t *tail) mask(p []byte) []byte {
	for _, s := range t.secrets {
		p = bytes.ReplaceAll(p, s, masked)
	}
	return p
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.secrets) > 0 {
		t.pending = append(t.pending, p...)
		cut := bytes.LastIndexByte(t.pending, '\n') + 1
		if cut == 0 && len(t.pending) > 64<<10 {
			cut = len(t.pending) // a very long line: pass it on masked anyway
		}
		p = t.mask(append([]byte(nil), t.pending[:cut]...))
		t.pending = append([]byte(nil), t.pending[cut:]...)
	}
	t.keep(p)
	t.pass(p)
	return n, nil
}

// start passes on what was held back, and from then on all output as it
// comes: call it once the node is running.
func (t *tail) start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waiting = false
	p := t.held
	t.held = nil
	t.pass(p)
}

// pass passes p on to the observer, or holds it back; the caller holds
// t.mu.
func (t *tail) pass(p []byte) {
	switch {
	case len(p) == 0:
	case t.waiting:
		t.held = append(t.held, p...)
	default:
		t.obs.Output(t.node, p)
	}
}

// flush passes on the line not yet ended: call it when the process has
// ended. What a node that never ran printed is kept, for its error, but
// never passed on: its output would come outside its running state.
func (t *tail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.mask(t.pending)
	t.pending = nil
	t.keep(p)
	t.pass(p)
}

// keep appends p to the kept lines; the caller holds t.mu.
func (t *tail) keep(p []byte) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailBytes {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-tailBytes:]...)
	}
}

// String returns the last 10 lines.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
