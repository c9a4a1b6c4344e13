package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/cgroup"
	"github.com/kiln-build/kiln/engine/idrange"
	"github.com/kiln-build/kiln/internal/osthread"
	"github.com/kiln-build/kiln/internal/owner"
	"github.com/kiln-build/kiln/internal/rootless"
)

// DefaultPids is the pids limit of a container that sets none.
const DefaultPids = 2048

// Runtime runs containers. Its state lives in a directory of its own,
// one subdirectory per container.
type Runtime struct {
	dir     string
	init    string
	cgroups *cgroup.Manager
	userns  *idrange.Allocator // with WithUserNS
}

var _ engine.Runtime = (*Runtime)(nil)

// Option configures a Runtime.
type Option func(*options) error

type options struct {
	cgroupParent string
	init         string
	userns       *idrange.Allocator
	noCgroups    bool
}

// WithoutCgroups runs containers without cgroups of their own, where
// kiln may make none (rootless, without a delegated cgroup): no resource
// limits (a container that asks for one fails to start), and a
// container's processes are killed through its PID namespace.
func WithoutCgroups() Option {
	return func(o *options) error {
		o.noCgroups = true
		return nil
	}
}

// WithInit sets the program that is re-executed as each container's init:
// a build of kiln, or any program whose main calls Main first. The
// default is /proc/self/exe, the running program itself.
func WithInit(path string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("init program %q: want an absolute path", path)
		}
		o.init = path
		return nil
	}
}

// WithCgroupParent sets the cgroup under which containers' cgroups are
// made. The default is "kiln".
func WithCgroupParent(name string) Option {
	return func(o *options) error {
		if name == "" || strings.Contains(name, "..") {
			return fmt.Errorf("invalid cgroup parent %q", name)
		}
		o.cgroupParent = name
		return nil
	}
}

// New returns a runtime keeping its state in dir, and sweeps what
// crashed kiln processes left there: their containers' processes and
// cgroups.
func New(ctx context.Context, dir string, opts ...Option) (*Runtime, error) {
	o := options{cgroupParent: "kiln", init: "/proc/self/exe"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating container state directory: %w", err)
	}
	var cg *cgroup.Manager
	if !o.noCgroups {
		var err error
		if cg, err = cgroup.NewManager(cgroup.WithParent(o.cgroupParent)); err != nil {
			return nil, fmt.Errorf("finding cgroups: %w", err)
		}
	}
	r := &Runtime{dir: dir, init: o.init, cgroups: cg, userns: o.userns}
	if err := r.Sweep(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// state is what the runtime records of a container on disk, so that a
// later kiln can clean up after a crashed one.
type state struct {
	ID    string      `json:"id"`
	Owner owner.Owner `json:"owner"` // the kiln process that created it
}

func (r *Runtime) statePath(id string) string { return filepath.Join(r.dir, id, "state.json") }

// newPrefix starts the names of container directories being made:
// newPrefix + pid + "-" + random.
const newPrefix = ".new-"

// makeDir makes the directory of container st.ID with its state already
// in it: made as .new-<pid>-<random> (which Sweep removes once this
// process is gone) and renamed, so that a crash never leaves a container
// directory without the state that names its owner. An existing
// container of that name is engine.ErrExists.
func (r *Runtime) makeDir(st state) error {
	tmp, err := os.MkdirTemp(r.dir, newPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return fmt.Errorf("creating container %s: %w", st.ID, err)
	}
	b, err := json.Marshal(st)
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, "state.json"), b, 0o600)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("writing container state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, st.ID)); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("container %s: %w", st.ID, engine.ErrExists)
		}
		return fmt.Errorf("creating container %s: %w", st.ID, err)
	}
	return nil
}

// delPrefix starts the names of container directories being removed:
// delPrefix + pid + "-" + random.
const delPrefix = ".del-"

// removeDir removes the container directory p: first renamed out of
// sight, to .del-<pid>-<random> (which Sweep removes once this process is
// gone), so that a crash halfway never leaves a container directory
// without its state, then removed. Where the rename fails, p is removed
// where it is.
func (r *Runtime) removeDir(p string) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails on Linux
	trash := filepath.Join(r.dir, delPrefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Rename(p, trash); err == nil {
		p = trash
	} else if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return os.RemoveAll(p)
}

// newDirPid returns the pid in the name of a directory makeDir is making
// or removeDir is removing.
func newDirPid(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, newPrefix)
	if !ok {
		if rest, ok = strings.CutPrefix(name, delPrefix); !ok {
			return 0, false
		}
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil && pid > 0
}

// Sweep removes the containers of kiln processes that no longer run:
// it kills what is left of them, and removes their cgroups and state.
func (r *Runtime) Sweep(ctx context.Context) error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("sweeping containers: %w", err)
	}
	live := map[string]bool{}
	var errs []error
	for _, e := range entries {
		id := e.Name()
		if pid, ok := newDirPid(id); ok {
			// A container directory being made or removed (see makeDir
			// and removeDir).
			if o, err := owner.Of(pid); err == nil && o.Alive() {
				continue
			}
			if err := os.RemoveAll(filepath.Join(r.dir, id)); err != nil {
				errs = append(errs, fmt.Errorf("removing state of container %s: %w", id, err))
			}
			continue
		}
		var s state
		b, err := os.ReadFile(r.statePath(id))
		if err == nil {
			err = json.Unmarshal(b, &s)
		}
		if err == nil && s.Owner.Alive() {
			live[id] = true
			continue
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// A torn state file: its owner died while writing it.
			s = state{ID: id}
		}
		// The init dies with its kiln (PDEATHSIG), and deleting the cgroup
		// kills whatever else is left.
		if r.cgroups == nil {
			// No cgroup: the init died with its kiln, and its PID
			// namespace with it.
		} else if cg, err := r.cgroups.Open(id); err == nil {
			if err := cg.Delete(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := r.removeDir(filepath.Join(r.dir, id)); err != nil {
			errs = append(errs, fmt.Errorf("removing state of container %s: %w", id, err))
		}
	}
	if r.cgroups == nil {
		return errors.Join(errs...)
	}
	// Cgroups whose container state was never written.
	names, err := r.cgroups.List()
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range names {
		if live[name] {
			continue
		}
		if _, err := os.Stat(filepath.Join(r.dir, name)); err == nil {
			continue // created after the listing above
		}
		if cg, err := r.cgroups.Open(name); err == nil {
			if err := cg.Delete(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Create starts a container; see engine.Runtime.
func (r *Runtime) Create(ctx context.Context, spec engine.Spec) (_ engine.Container, retErr error) {
	if err := engine.ValidID(spec.ID); err != nil {
		return nil, err
	}
	if len(spec.Process.Args) == 0 {
		return nil, errors.New("creating container: no command given")
	}
	if spec.Network == "" {
		spec.Network = engine.NetworkHost
	}
	if _, err := engine.ParseNetwork(string(spec.Network)); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.dir, spec.ID)
	if err := r.makeDir(state{ID: spec.ID, Owner: owner.Self()}); err != nil {
		return nil, err
	}
	c := &ctr{r: r, id: spec.ID, dir: dir, spec: spec, done: make(chan struct{})}
	defer func() {
		if retErr != nil {
			_ = c.Delete(context.WithoutCancel(ctx))
		}
	}()
	rootdir := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootdir, 0o755); err != nil {
		return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
	}

	limits := cgroup.Limits{Pids: spec.Limits.Pids, Memory: spec.Limits.Memory, CPUs: spec.Limits.CPUs}
	if limits.Pids == 0 {
		limits.Pids = DefaultPids
	}
	if r.cgroups == nil {
		if spec.Limits != (engine.Limits{}) {
			return nil, fmt.Errorf("creating container %s: resource limits (memory, cpus, pids) need a cgroup, and this kiln runs without (rootless, no delegated cgroup)", spec.ID)
		}
	} else {
		cg, err := r.cgroups.Create(ctx, spec.ID, limits)
		if err != nil {
			return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
		}
		c.cg = cg
	}

	hostname := spec.Hostname
	if hostname == "" {
		hostname = spec.ID
		if len(hostname) > 12 {
			hostname = hostname[:12]
		}
	}
	cfg := initConfig{
		Rootdir: rootdir, Rootfs: spec.Rootfs, Mounts: spec.Mounts,
		Hostname: hostname, Network: spec.Network,
		InPod:     spec.NetNS != "",
		Process:   newProcessConfig(spec.Process),
		DropMknod: !c.deviceFilter(),
	}
	if err := c.start(ctx, cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// ctr is a container of Runtime.
type ctr struct {
	r    *Runtime
	id   string
	dir  string
	spec engine.Spec
	cg   *cgroup.Cgroup
	cmd  *exec.Cmd

	ctrlMu sync.Mutex
	ctrl   *os.File // the exec helper's control socket

	stubs   []string
	parents []stubParent

	lease *idrange.Lease // its user namespace's range, with WithUserNS

	console     *os.File        // the terminal's controlling side, with Process.Terminal
	consoleDone <-chan struct{} // closed when the terminal's output ends

	mu        sync.Mutex
	timedOut  bool
	cancelled bool
	timer     *time.Timer

	done    chan struct{} // closed when PID 1 has been reaped
	waitErr error
	ws      syscall.WaitStatus

	deleteOnce sync.Once
	deleteErr  error
}

func (c *ctr) ID() string { return c.id }

func (c *ctr) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// start starts the init, puts it in the cgroup, hands it its config and
// waits for it to exec PID 1 (or fail).
func (c *ctr) start(ctx context.Context, cfg initConfig) error {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer cfgR.Close()
	defer cfgW.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer syncR.Close()
	defer syncW.Close()
	extra := []*os.File{cfgR, syncW}
	if c.spec.Exec {
		ours, child, err := socketpair(unix.SOCK_SEQPACKET, "ctrl")
		if err != nil {
			return fmt.Errorf("creating exec socket: %w", err)
		}
		defer child.Close()
		c.ctrl = ours
		cfg.CtrlFd = 3 + len(extra)
		extra = append(extra, child)
	}
	p := c.spec.Process
	var console *os.File
	if p.Terminal {
		ours, child, err := socketpair(unix.SOCK_STREAM, "console")
		if err != nil {
			return fmt.Errorf("creating console socket: %w", err)
		}
		defer ours.Close()
		defer child.Close()
		console = ours
		cfg.ConsoleFd = 3 + len(extra)
		extra = append(extra, child)
		// The init makes the terminal and gives it as stdio.
		p.Stdin, p.Stdout, p.Stderr = nil, nil, nil
	}

	if c.r.userns != nil {
		files, err := c.prepareUserNS(ctx, &cfg, 3+len(extra))
		if err != nil {
			return err
		}
		defer closeFiles(files)
		extra = append(extra, files...)
	}

	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if cfg.Network == engine.NetworkNone && c.spec.NetNS == "" {
		flags |= unix.CLONE_NEWNET
	}
	cmd := &exec.Cmd{
		Path: c.r.init,
		Args: []string{initArg0},
		// The init is short-lived and runs on one locked thread: one P
		// (which also spares the Go runtime reading the cgroup's CPU
		// limit) and no garbage collection. The process it execs gets
		// its own environment, not this one.
		Env:        []string{"GOMAXPROCS=1", "GOGC=off"},
		Stdin:      p.Stdin,
		Stdout:     p.Stdout,
		Stderr:     p.Stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			// If kiln dies, so does the container, and with PID 1 its
			// whole PID namespace and mount namespace.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if c.lease != nil {
		userNSAttr(cmd.SysProcAttr, c.lease.Range)
	}
	if err := c.startOnHeldThread(cmd); err != nil {
		return fmt.Errorf("starting container init: %w", err)
	}
	c.cmd = cmd
	go c.reap()
	cfgR.Close()
	syncW.Close()

	if c.cg == nil {
		// No cgroup to join.
	} else if err := c.cg.Add(cmd.Process.Pid); err != nil {
		return fmt.Errorf("adding container to its cgroup: %w", err)
	}
	if c.spec.Timeout > 0 {
		c.timer = time.AfterFunc(c.spec.Timeout, func() {
			c.mu.Lock()
			c.timedOut = true
			c.mu.Unlock()
			_ = c.Kill(context.Background())
		})
	}
	if err := json.NewEncoder(cfgW).Encode(cfg); err != nil {
		return fmt.Errorf("configuring container init: %w", err)
	}
	cfgW.Close()

	// The init reports its stubs, then the pipe closes on exec; or it
	// reports an error.
	type result struct {
		msgs []syncMsg
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var res result
		dec := json.NewDecoder(syncR)
		for {
			var m syncMsg
			if err := dec.Decode(&m); err != nil {
				if !errors.Is(err, io.EOF) {
					res.err = err
				}
				break
			}
			res.msgs = append(res.msgs, m)
		}
		ch <- res
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		_ = c.Kill(context.Background())
		return fmt.Errorf("starting container %s: %w", c.id, ctx.Err())
	}
	if res.err != nil {
		return fmt.Errorf("reading from container init: %w", res.err)
	}
	for _, m := range res.msgs {
		if m.Error != "" {
			<-c.done
			return &StartError{ID: c.id, Code: m.Code, Msg: m.Error}
		}
		c.stubs = append(c.stubs, m.Stubs...)
		c.parents = append(c.parents, m.Parents...)
	}
	if len(res.msgs) == 0 {
		<-c.done
		return fmt.Errorf("starting container %s: init exited before exec (%v)", c.id, c.waitErr)
	}
	if console != nil {
		master, err := recvFile(int(console.Fd()), "console")
		if err != nil {
			return fmt.Errorf("starting container %s: receiving its terminal: %w", c.id, err)
		}
		c.console = master
		if c.spec.Process.Console != nil {
			c.spec.Process.Console(master)
		}
		c.consoleDone = attach(master, c.spec.Process.Stdin, c.spec.Process.Stdout)
	}
	return nil
}

// socketpair returns a connected pair of unix sockets: ours, and the
// child's, to pass on.
func socketpair(typ int, name string) (ours, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}

func (c *ctr) reap() {
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		c.waitErr = err
	}
	if c.cmd.ProcessState != nil {
		c.ws = c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	close(c.done)
}

func (c *ctr) Wait(ctx context.Context) (engine.Status, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		c.mu.Lock()
		c.cancelled = true
		c.mu.Unlock()
		_ = c.Kill(context.Background())
		<-c.done
	}
	drained(c.consoleDone)
	if c.waitErr != nil {
		return engine.Status{}, fmt.Errorf("waiting for container %s: %w", c.id, c.waitErr)
	}
	s := statusOf(c.ws)
	c.mu.Lock()
	s.TimedOut, s.Cancelled = c.timedOut, c.cancelled
	c.mu.Unlock()
	if s.Signal != "" && c.ws.Signal() == syscall.SIGKILL && !s.TimedOut && !s.Cancelled {
		if c.cg == nil {
			// No cgroup: no memory limit to have been killed for.
		} else if oom, err := c.cg.OOMKilled(); err == nil && oom {
			s.OOMKilled = true
		}
	}
	return s, nil
}

func statusOf(ws syscall.WaitStatus) engine.Status {
	if ws.Signaled() {
		return engine.Status{Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	}
	return engine.Status{Code: ws.ExitStatus()}
}

// startOnHeldThread starts cmd from an OS thread that no other goroutine
// runs on until PID 1 has been reaped. The init's parent-death signal
// (SIGKILL) fires when the thread that forked it ends, not the process
// (golang/go#27505), and the Go runtime ends a thread whenever a
// goroutine that locked it returns, as Mounted and the snapshotter's
// private mount namespaces do: forked from any thread, a container could
// be killed by an unrelated goroutine's exit.
//
// With Spec.NetNS, the thread joins that network namespace first, so that
// the init is forked into it; the thread then ends with the goroutine
// instead of serving others from a namespace not the process's.
func (c *ctr) startOnHeldThread(cmd *exec.Cmd) error {
	var ns *os.File
	if c.spec.NetNS != "" {
		var err error
		if ns, err = os.Open(c.spec.NetNS); err != nil {
			return fmt.Errorf("opening the pod's network namespace: %w", err)
		}
		defer ns.Close()
	}
	started := make(chan error, 1)
	osthread.Own(func() {
		if ns != nil {
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				started <- fmt.Errorf("joining the pod's network namespace: %w", err)
				return // locked: the thread ends
			}
		}
		if c.lease != nil {
			// In a user namespace the init cannot search kiln's
			// directories: it inherits the container's directory as its
			// working directory instead (in its copy of the mount
			// namespace), from this thread alone.
			if err := chdirThread(c.dir); err != nil {
				started <- err
				return // locked: the thread ends
			}
		}
		if ns == nil && c.lease == nil {
			defer runtime.UnlockOSThread() // the thread is as it was: it may serve others again
		}
		err := cmd.Start()
		started <- err
		if err == nil {
			<-c.done
		}
	})
	return <-started
}

// deviceFilter reports whether the container's cgroup filters device
// access; without one, CAP_MKNOD is taken away.
func (c *ctr) deviceFilter() bool { return c.cg != nil && c.cg.DeviceFilter() }

// Kill kills PID 1; the kernel then kills every other process of the
// container's PID namespace.
func (c *ctr) Kill(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	// Until reaped, the PID cannot be reused: this signals our child.
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing container %s: %w", c.id, err)
	}
	return nil
}

// Delete kills the container, waits for PID 1, removes the cgroup, the
// mountpoint stubs from the writable layer, and the state directory.
func (c *ctr) Delete(ctx context.Context) error {
	c.deleteOnce.Do(func() {
		var errs []error
		if c.cmd != nil && c.cmd.Process != nil {
			_ = c.Kill(ctx)
			<-c.done
		}
		if c.ctrl != nil {
			c.ctrl.Close()
		}
		if c.console != nil {
			drained(c.consoleDone)
			c.console.Close()
		}
		if c.cg != nil {
			if err := c.cg.Delete(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := removeStubs(c.spec.Rootfs, c.stubs, c.parents); err != nil {
			errs = append(errs, err)
		}
		if err := c.r.removeDir(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.id, err))
		}
		if c.lease != nil {
			c.lease.Release()
		}
		c.deleteErr = errors.Join(errs...)
	})
	return c.deleteErr
}

// removeStubs removes, from the writable layer, the mountpoints the init
// created, when they are still empty: they did not exist in the image
// and must not appear in the step's layer. It then restores the times of
// the directories they were made in. Each is looked up in the writable
// layer without following any link: the container may have replaced a
// directory on the way with a link out of it, and such a stub is not
// ours any more.
func removeStubs(rootfs []engine.Mount, stubs []string, parents []stubParent) error {
	if len(stubs) == 0 {
		return nil
	}
	w, err := engine.Writable(rootfs)
	if err != nil {
		return err
	}
	wfd, err := unix.Open(w, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("removing mountpoint stubs: %w", err)
	}
	defer unix.Close(wfd)
	// Deepest first, so a stub directory empties before its parent.
	sort.Slice(stubs, func(i, j int) bool { return len(stubs[i]) > len(stubs[j]) })
	for _, s := range stubs {
		dir, base, err := openParent(wfd, s)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			switch {
			case st.Mode&unix.S_IFMT == unix.S_IFDIR:
				_ = unix.Unlinkat(dir, base, unix.AT_REMOVEDIR) // fails, as it should, when not empty
			case st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0:
				_ = unix.Unlinkat(dir, base, 0)
			}
		}
		unix.Close(dir)
	}
	overlay := len(rootfs) > 0 && rootfs[0].Type == "overlay"
	for _, p := range parents {
		restoreParent(wfd, p, overlay)
	}
	return nil
}

// restoreParent restores the times of a directory stubs were made in,
// below the writable layer open as wfd and without following links; in
// an overlay's upperdir it drops the directory when it is an unchanged
// copy-up.
func restoreParent(wfd int, p stubParent, overlay bool) {
	dir, base, err := openParent(wfd, p.Path)
	if err != nil {
		return
	}
	defer unix.Close(dir)
	ts := []unix.Timespec{unix.NsecToTimespec(p.Atime), unix.NsecToTimespec(p.Mtime)}
	// The directory may not be in the writable layer at all.
	if unix.UtimesNanoAt(dir, base, ts, unix.AT_SYMLINK_NOFOLLOW) != nil || !overlay || p.Path == "." {
		return
	}
	// Creating the stub copied its directory up into the upperdir.
	// Empty, not opaque and as it was, that copy changes nothing in
	// the merged view: drop it, so it does not enter the layer.
	var st unix.Stat_t
	if unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode != p.Mode || st.Uid != p.UID || st.Gid != p.GID {
		return
	}
	fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	n, _ := unix.Fgetxattr(fd, rootless.OverlayXattrPrefix()+"opaque", make([]byte, 1))
	unix.Close(fd)
	if n > 0 {
		return
	}
	_ = unix.Unlinkat(dir, base, unix.AT_REMOVEDIR) // fails, as it should, when not empty
}
