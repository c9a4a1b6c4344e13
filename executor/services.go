package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/image"
	"github.com/kiln-build/kiln/manifest"
)

// service is a service instance: its container, from ready until the
// last test that uses it ends.
type service struct {
	n     *dag.Node
	users int       // tests (and run steps) still to end that use it
	st    *fsState  // what it runs on, resolved by its node
	key   cache.Key // its image's and settings', for its users' keys
	// mu is held while it starts; started says it was asked for, err
	// how that ended, reported that a user returned err already.
	mu       sync.Mutex
	started  bool
	err      error
	reported bool
	out      *output
	ctr      engine.Container
	snap     string // its snapshot's key
}

// pod is the network namespace of a test and its services, or of a
// stage's shared services and the tests that use them.
type pod struct {
	ns    engine.Pod
	hosts []byte // its /etc/hosts
}

// services is the build's service instances and pods.
type services struct {
	mu   sync.Mutex
	byN  map[*dag.Node]*service
	pods map[string]*pod // by podKey
	// removing is the removals of stopped services' containers and
	// snapshots under way; Build waits for them.
	removing sync.WaitGroup
}

// podKey names the pod of a service node or of a test or run step with
// services: the stage's shared pod, or the user's own, named by its key.
func podKey(n *dag.Node) string {
	switch n.Kind {
	case dag.KindService:
		if n.Service.Share {
			return n.Stage.Name + "/shared"
		}
		return n.Key[:strings.LastIndex(n.Key, "/service/")]
	case dag.KindTest, dag.KindStep:
		for _, d := range n.Deps {
			if d.Kind == dag.KindService {
				return podKey(d)
			}
		}
	}
	return ""
}

// initServices counts the users of every needed service node.
func (r *run) initServices(nodes []*dag.Node) {
	r.svcs.byN = map[*dag.Node]*service{}
	r.svcs.pods = map[string]*pod{}
	for _, n := range nodes {
		if n.Kind != dag.KindTest && n.Kind != dag.KindStep {
			continue
		}
		for _, d := range n.Deps {
			if d.Kind == dag.KindService {
				s := r.svcs.byN[d]
				if s == nil {
					s = &service{n: d}
					r.svcs.byN[d] = s
				}
				s.users++
			}
		}
	}
}

// podOf returns the pod of node n (a service or a test with services),
// made on first use; nil for a test without services.
func (r *run) podOf(ctx context.Context, n *dag.Node) (*pod, error) {
	k := podKey(n)
	if k == "" {
		return nil, nil
	}
	r.svcs.mu.Lock()
	defer r.svcs.mu.Unlock()
	if p := r.svcs.pods[k]; p != nil {
		return p, nil
	}
	pr, ok := r.opts.Runtime.(engine.PodRuntime)
	if !ok {
		return nil, fmt.Errorf("service %s: the container runtime has no pods", n.Service.Name)
	}
	ns, err := pr.NewPod(ctx)
	if err != nil {
		return nil, err
	}
	// Every service of the stage the pod may hold is named: a test's
	// services, or the stage's shared ones.
	names := []string{"localhost"}
	for _, sv := range n.Stage.Services {
		if strings.HasSuffix(k, "/shared") == sv.Share {
			names = append(names, sv.Name)
		}
	}
	p := &pod{ns: ns, hosts: []byte("127.0.0.1\t" + strings.Join(names, " ") + "\n::1\tlocalhost\n")}
	r.svcs.pods[k] = p
	return p, nil
}

// inPod sets spec to join pod p, with its /etc/hosts.
func (p *pod) join(spec *engine.Spec) {
	spec.NetNS = p.ns.NetNS()
	spec.Mounts = append(spec.Mounts, engine.Mount{Type: "bind", Target: "/etc/hosts", File: &engine.File{Data: p.hosts, Mode: 0o644}})
}

// runService resolves service node n: its image and its key, which the
// keys of the tests (and run steps) that use it cover. It starts
// nothing: a user that finds its own result in the cache never needs it;
// one that does not starts it with startServices.
func (r *run) runService(ctx context.Context, n *dag.Node, m *fsm.Machine) error {
	st, err := r.serviceImage(ctx, n)
	if err != nil {
		return err
	}
	s := r.svcs.byN[n]
	if s == nil {
		return nil // no user of it is needed
	}
	s.st = st
	s.key = serviceKey(n.Service, st.key)
	m.SetCacheKey(s.key.String())
	return nil
}

// serviceFailed is the error of a node that did not run because a
// service it needs never got ready: the service's own error.
type serviceFailed struct{ err error }

func (e *serviceFailed) Error() string { return e.err.Error() }
func (e *serviceFailed) Unwrap() error { return e.err }

// startServicesBeside starts n's services (see startServices) while
// its caller prepares n's own container; the function it returns waits
// for them. A caller that fails first need not call it.
func (r *run) startServicesBeside(ctx context.Context, n *dag.Node) func() error {
	if podKey(n) == "" {
		return func() error { return nil }
	}
	ch := make(chan error, 1)
	go func() { ch <- r.startServices(ctx, n, true) }()
	return func() error { return <-ch }
}

// startServices starts the services node n (a test or a run step) needs,
// at once, and waits until all are ready. A service already started for
// another user (shared), or at a debugger's stop, is not started again.
// When one fails, the first user to see it returns a *serviceFailed with
// its error; others, errDependencyFailed. From a debugger (user false),
// the service's own error.
func (r *run) startServices(ctx context.Context, n *dag.Node, user bool) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, d := range n.Deps {
		s := r.svcs.byN[d]
		if s == nil {
			continue
		}
		wg.Go(func() {
			err := r.startService(ctx, s, user)
			mu.Lock()
			if err != nil && (first == nil || errors.Is(first, errDependencyFailed)) {
				first = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return first
}

// startService starts s once, for whichever asks first; see
// startServices.
func (r *run) startService(ctx context.Context, s *service, user bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		m := r.machines[s.n]
		begin := time.Now()
		if s.err = r.bootService(ctx, s, m); s.err != nil {
			to := fsm.Failed
			if ctx.Err() != nil {
				to, s.reported = fsm.Cancelled, true // the build's own error says why
			}
			_ = m.To(ctx, to, s.err)
			if to == fsm.Failed {
				r.addFailure(s.n, time.Since(begin), s.err)
				r.mu.Lock()
				r.failed[s.n] = true
				r.mu.Unlock()
			}
		}
	}
	switch {
	case s.err == nil:
		return nil
	case !user:
		return s.err
	case s.reported:
		return errDependencyFailed
	}
	s.reported = true
	return &serviceFailed{err: s.err}
}

// bootService starts service s's container in its pod and waits until
// it is ready, or its timeout passes. The container runs on after it
// returns, until releaseServices stops it.
func (r *run) bootService(ctx context.Context, s *service, m *fsm.Machine) error {
	n, sv, st := s.n, s.n.Service, s.st
	if err := m.To(ctx, fsm.Starting, nil); err != nil {
		return err
	}
	if st.dirs == nil && sv.Stage == "" {
		var err error
		if st.dirs, err = r.baseDirs(ctx, st.base); err != nil {
			return err
		}
	}
	if err := r.unpackFor(ctx, n, st); err != nil {
		return err
	}
	p, err := r.podOf(ctx, n)
	if err != nil {
		return err
	}
	s.snap = snapshotKey(n)
	mounts, err := r.opts.Snapshotter.Prepare(ctx, s.snap, uniqueDirs(st.dirs))
	if err != nil {
		return err
	}
	s.out = r.newOutput(n)
	s.out.all.start() // a service's output is passed on as it comes
	args := append(append([]string(nil), st.config.Entrypoint...), st.config.Cmd...)
	if sv.Command != nil {
		args = sv.Command.Args()
	}
	env := st.config.Env
	for _, kv := range sv.Env {
		env = manifest.SetEnv(env, kv.Key+"="+kv.Value)
	}
	proc := engine.Process{Args: args, Env: env, Cwd: st.config.WorkingDir, User: st.config.User, Stdout: s.out.outW, Stderr: s.out.errW}
	if sv.Workdir != "" {
		proc.Cwd = sv.Workdir
	}
	if sv.User != "" {
		proc.User = sv.User
	}
	lim, _ := r.limitsFor(n)
	// Exec: a ready command runs in it, as does a debugger's shell.
	spec := engine.Spec{ID: s.snap, Rootfs: mounts, Process: proc, Limits: lim, Exec: sv.Ready.Run != nil || r.debug != nil, Hostname: sv.Name}
	p.join(&spec)
	timeout := sv.Timeout
	if timeout <= 0 {
		timeout = manifest.DefaultServiceTimeout
	}
	if len(args) == 0 {
		err = errors.New("the image has no entrypoint or cmd: give the service a command")
	} else {
		err = r.waitReady(ctx, s, spec, timeout)
	}
	if err != nil {
		r.stopService(context.WithoutCancel(ctx), s, true)
		s.out.flush()
		return s.out.failed("service", sv.Name, sv.Pos, err)
	}
	return m.To(ctx, fsm.Ready, nil)
}

// serviceImage returns the filesystem and config a service runs on: its
// stage's, or its image's.
func (r *run) serviceImage(ctx context.Context, n *dag.Node) (*fsState, error) {
	sv := n.Service
	if sv.Stage != "" {
		st := r.state(r.g.Last(sv.Stage))
		if st == nil {
			return nil, fmt.Errorf("service %s: stage %s left no state", sv.Name, sv.Stage)
		}
		return st.clone(), nil
	}
	img, err := r.opts.Base(ctx, sv.Image)
	if err != nil {
		return nil, manifest.Errorf(sv.Pos, "service %s: image %q: %v", sv.Name, sv.Image, err)
	}
	if img == nil {
		return nil, manifest.Errorf(sv.Pos, "service %s: image %q is empty", sv.Name, sv.Image)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cfg, err := image.ConfigOf(img)
	if err != nil {
		return nil, fmt.Errorf("reading config of %s: %w", sv.Image, err)
	}
	// Its layers are unpacked when it starts (bootService), if ever.
	return &fsState{base: img, config: cfg, key: cache.BaseKey(d)}, nil
}

// serviceKey is what a test's key covers of a service: its image and
// every setting.
func serviceKey(sv *manifest.Service, image cache.Key) cache.Key {
	in := cache.KeyInput{Parent: image, Kind: "service", Workdir: sv.Workdir, User: sv.User,
		Args: []string{sv.Name, strconv.Itoa(sv.Ready.Port), sv.Timeout.String(), strconv.FormatBool(sv.Share)}}
	if sv.Command != nil {
		in.Shell = append([]string{"command"}, sv.Command.Args()...)
	}
	if sv.Ready.Run != nil {
		in.Args = append(in.Args, sv.Ready.Run.Args()...)
	}
	for _, kv := range sv.Env {
		in.Env = append(in.Env, kv.Key+"="+kv.Value)
	}
	return cache.ComputeKey(in)
}

// servicesInput returns the keys of test n's services, for its key.
func (r *run) servicesInput(n *dag.Node) []v1.Hash {
	var out []v1.Hash
	for _, d := range n.Deps {
		if s := r.svcs.byN[d]; s != nil {
			out = append(out, v1.Hash{Algorithm: "sha256", Hex: s.key.String()})
		}
	}
	return out
}

// waitReady creates the container and waits until it is ready: its
// port listens in the pod, or its ready command exits 0. It fails when
// the container ends first, or timeout passes.
func (r *run) waitReady(ctx context.Context, s *service, spec engine.Spec, timeout time.Duration) error {
	c, err := r.opts.Runtime.Create(ctx, spec)
	if err != nil {
		return err
	}
	s.ctr = c
	exited := make(chan engine.Status, 1)
	go func() {
		st, _ := c.Wait(context.WithoutCancel(ctx))
		exited <- st
	}()
	sv := s.n.Service
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	wait := time.Millisecond
	for {
		ok, why := r.ready(ctx, c, sv)
		if ok {
			return nil
		}
		select {
		case st := <-exited:
			exited <- st
			return fmt.Errorf("it exited (status %d) before it was ready", st.Code)
		case <-deadline.C:
			return fmt.Errorf("it never got ready within %s: %s", timeout, why)
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Millisecond) // a check reads a small file: poll often
	}
}

// ready checks a service once, saying what it waits for when not.
func (r *run) ready(ctx context.Context, c engine.Container, sv *manifest.Service) (bool, string) {
	switch {
	case sv.Ready.Port > 0:
		return listening(c.Pid(), sv.Ready.Port), fmt.Sprintf("nothing listens on port %d", sv.Ready.Port)
	case sv.Ready.Run != nil:
		st, err := c.Exec(ctx, engine.Process{Args: sv.Ready.Run.Args()})
		if err == nil && st.Code == 0 {
			return true, ""
		}
		why := fmt.Sprintf("its ready command exits %d", st.Code)
		if err != nil {
			why = "its ready command: " + err.Error()
		}
		return false, why
	}
	return true, ""
}

// listening reports whether a TCP socket listens on port in the network
// namespace of process pid, from its /proc/PID/net/tcp and tcp6.
func listening(pid, port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// sl local_address rem_address st …; st 0A is LISTEN.
			fs := strings.Fields(sc.Text())
			if len(fs) > 3 && fs[3] == "0A" && strings.HasSuffix(fs[1]+" ", want) {
				fh.Close()
				return true
			}
		}
		fh.Close()
	}
	return false
}

// releaseServices notes that test n ended (or will never run): each of
// its services that no other test needs is stopped, and its pod, when
// its own, closed.
func (r *run) releaseServices(ctx context.Context, n *dag.Node) {
	var stop []*service
	r.svcs.mu.Lock()
	for _, d := range n.Deps {
		s := r.svcs.byN[d]
		if s == nil {
			continue
		}
		if s.users--; s.users == 0 {
			stop = append(stop, s)
		}
	}
	r.svcs.mu.Unlock()
	for _, s := range stop {
		<-r.done[s.n] // it may still be resolving, for a test that never ran
		s.mu.Lock()
		r.stopService(ctx, s, false)
		s.mu.Unlock()
		m := r.machines[s.n]
		switch m.State() {
		case fsm.Ready:
			_ = m.To(ctx, fsm.Stopped, nil)
		case fsm.Pending:
			// Never started: its last user found its result in the
			// cache, or never ran.
			if r.machines[n].State() == fsm.Cached {
				_ = m.To(ctx, fsm.Cached, nil)
			} else {
				_ = m.To(ctx, fsm.Cancelled, context.Canceled)
			}
		}
	}
	if k := podKey(n); k != "" && !strings.HasSuffix(k, "/shared") {
		r.closePod(k)
	}
}

// stopService kills a service's container. Its container and snapshot
// are removed then (wait), or beside the rest of the build, which Build
// waits for before it returns (svcs.removing): a test's result, and the
// next node, do not wait for a service's teardown.
func (r *run) stopService(ctx context.Context, s *service, wait bool) {
	c, snap, out := s.ctr, s.snap, s.out
	s.ctr, s.snap = nil, ""
	if c == nil && snap == "" {
		return
	}
	if c != nil {
		_ = c.Kill(ctx)
	}
	remove := func() {
		if c != nil {
			_ = c.Delete(ctx)
			out.flush()
		}
		if snap != "" {
			_ = r.opts.Snapshotter.Remove(ctx, snap)
		}
	}
	if wait {
		remove()
		return
	}
	r.svcs.removing.Go(remove)
}

func (r *run) closePod(k string) {
	r.svcs.mu.Lock()
	p := r.svcs.pods[k]
	delete(r.svcs.pods, k)
	r.svcs.mu.Unlock()
	if p != nil {
		_ = p.ns.Close()
	}
}

// endServices stops whatever service still runs and closes every pod,
// when the build ends: an interrupted build never released them all.
func (r *run) endServices(ctx context.Context) {
	for _, s := range r.svcs.byN {
		r.stopService(ctx, s, false)
		if m := r.machines[s.n]; m != nil && !m.State().Final() {
			_ = m.To(ctx, fsm.Cancelled, context.Canceled)
		}
	}
	r.svcs.mu.Lock()
	var keys []string
	for k := range r.svcs.pods {
		keys = append(keys, k)
	}
	r.svcs.mu.Unlock()
	for _, k := range keys {
		r.closePod(k)
	}
}

// serviceLogs returns the last lines of test n's services' output, for
// its failure.
func (r *run) serviceLogs(n *dag.Node) string {
	var b strings.Builder
	for _, d := range n.Deps {
		s := r.svcs.byN[d]
		if s == nil || s.out == nil {
			continue
		}
		s.out.all.flush()
		fmt.Fprintf(&b, "\n  service %s's last output:\n    %s", d.Service.Name, strings.ReplaceAll(strings.TrimRight(s.out.all.String(), "\n"), "\n", "\n    "))
	}
	return b.String()
}
