package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
)

// Main runs the container init or the exec helper when this process was
// started as one, and then never returns. In any other process it returns
// false at once. Call it first thing in main, and in TestMain.
func Main() bool {
	switch os.Args[0] {
	case initArg0:
		// The init configures and execs from this thread: capabilities
		// and credentials are per thread until execve.
		runtime.LockOSThread()
		err := runInit()
		reportInitError(err)
		os.Exit(1)
	case holdArg0:
		hold()
	case helperArg0:
		if err := runHelper(); err != nil {
			fmt.Fprintf(os.Stderr, "kiln exec helper: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	return false
}

func reportInitError(err error) {
	if err == nil {
		err = errors.New("init returned without exec")
	}
	msg := syncMsg{Error: err.Error()}
	var ce *commandError
	if errors.As(err, &ce) {
		msg.Code = ce.code
	}
	f := os.NewFile(fdSync, "sync")
	if jerr := json.NewEncoder(f).Encode(msg); jerr != nil {
		fmt.Fprintf(os.Stderr, "kiln init: %v\n", err)
	}
}

func runInit() error {
	// Whatever kiln inherited past stdio, and did not pass on purpose,
	// never reaches the container's processes.
	if err := StdioOnly(); err != nil {
		return err
	}
	var cfg initConfig
	cf := os.NewFile(fdConfig, "config")
	if err := json.NewDecoder(cf).Decode(&cfg); err != nil {
		return fmt.Errorf("reading container config: %w", err)
	}
	cf.Close()
	unix.CloseOnExec(fdSync)

	// Mounts made from here on stay in this namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := stageFiles(cfg.Rootdir, cfg.Mounts, cfg.UserNS); err != nil {
		return err
	}
	r := &rootfs{dir: cfg.Rootdir}
	if cfg.UserNS {
		for _, fd := range cfg.RootfsFds {
			if err := attachMount(fd, cfg.Rootdir); err != nil {
				return err
			}
		}
	} else if err := r.mountRoot(cfg.Rootfs); err != nil {
		return err
	}
	if err := r.setup(cfg); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("setting hostname: %w", err)
	}
	if cfg.Network == engine.NetworkNone && !cfg.InPod {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if cfg.CtrlFd > 0 {
		if err := startHelper(cfg.CtrlFd); err != nil {
			return err
		}
	}
	if err := pivotRoot(cfg.Rootdir); err != nil {
		return err
	}

	p, err := prepareProcess(cfg.Process)
	if err != nil {
		return err
	}
	if err := unix.Chdir(p.dir); err != nil {
		return fmt.Errorf("entering working directory: %w", err)
	}
	if cfg.Process.Terminal {
		if err := takeConsole(cfg.ConsoleFd, p.cred); err != nil {
			return err
		}
	}
	sf := os.NewFile(fdSync, "sync")
	if err := json.NewEncoder(sf).Encode(syncMsg{Stubs: r.stubs, Parents: r.parents}); err != nil {
		return fmt.Errorf("reporting to kiln: %w", err)
	}
	if err := dropPrivileges(p.cred, cfg.DropMknod); err != nil {
		return err
	}
	if err := unix.Exec(p.path, p.args, p.env); err != nil {
		return fmt.Errorf("exec %s: %w", p.args[0], err)
	}
	return nil
}

// startHelper starts the exec helper as a child of the init, before the
// init execs PID 1: the helper so lives in all of the container's
// namespaces and its cgroup, and dies with PID 1. It must start before
// pivot_root: after it, /proc/self/exe (outside the new root) cannot be
// executed; pivot_root then moves the helper into the new root with the
// init, as it does every process of the mount namespace.
func startHelper(ctrl int) error {
	ready, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("starting the exec helper: %w", err)
	}
	defer ready.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{helperArg0},
		// From the host's root, which pivot_root then moves into the
		// container's: kiln's own working directory, a host directory,
		// must not stay the helper's.
		Dir:        "/",
		ExtraFiles: []*os.File{os.NewFile(uintptr(ctrl), "ctrl"), readyW},
		Env:        []string{},
		Stderr:     os.Stderr, // for its own errors
	}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return fmt.Errorf("starting the exec helper: %w", err)
	}
	// The init's copy of the control socket is not needed past this.
	unix.Close(ctrl)
	// Wait until the helper runs: a dynamically linked kiln loads its
	// libraries from the root, which pivot_root is about to change.
	if n, _ := ready.Read(make([]byte, 1)); n != 1 {
		return errors.New("the exec helper exited at start")
	}
	return nil
}

// takeConsole makes a terminal in the container, makes it the init's
// stdio and controlling terminal, and sends its controlling side to kiln.
func takeConsole(fd int, cred credential) error {
	master, replica, err := newConsole(cred.uid, cred.gid)
	if err != nil {
		return err
	}
	defer master.Close()
	defer replica.Close()
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(int(replica.Fd()), i, 0); err != nil {
			return fmt.Errorf("making the terminal stdio: %w", err)
		}
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("making a session: %w", err)
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("setting the controlling terminal: %w", err)
	}
	if err := sendFile(fd, master); err != nil {
		return fmt.Errorf("sending the terminal to kiln: %w", err)
	}
	return unix.Close(fd)
}

// process is a resolved processConfig.
type process struct {
	path string
	args []string
	env  []string
	dir  string
	cred credential
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// prepareProcess resolves user, environment, working directory and
// program path inside the container (after pivot_root).
func prepareProcess(pc processConfig) (*process, error) {
	if len(pc.Args) == 0 {
		return nil, errors.New("no command given and the image has none")
	}
	cred, home, err := lookupUser(pc.User)
	if err != nil {
		return nil, err
	}
	env := withDefaults(pc.Env, home, pc.Terminal)
	cwd := pc.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("working directory %q is not absolute", cwd)
	}
	// Made inside the root, the process's root since pivot_root, with
	// links read as strings (a magic one could name a descriptor of the
	// host), and entered by its resolved path, which holds none.
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating working directory: %w", err)
	}
	fd, rel, err := walk(root, cwd, walkOptions{create: true})
	unix.Close(root)
	if err != nil {
		return nil, fmt.Errorf("creating working directory: %w", err)
	}
	unix.Close(fd)
	cwd = path.Join("/", rel)
	path, err := lookPath(pc.Args[0], env, cwd)
	if err != nil {
		return nil, err
	}
	return &process{path: path, args: pc.Args, env: env, dir: cwd, cred: cred}, nil
}

// withDefaults adds PATH, HOME and (for a terminal) TERM to env where
// the caller did not set them, as Docker does.
func withDefaults(env []string, home string, terminal bool) []string {
	has := func(k string) bool {
		for _, e := range env {
			if strings.HasPrefix(e, k+"=") {
				return true
			}
		}
		return false
	}
	out := append([]string(nil), env...)
	if !has("PATH") {
		out = append(out, "PATH="+defaultPath)
	}
	if !has("HOME") {
		out = append(out, "HOME="+home)
	}
	if terminal && !has("TERM") {
		out = append(out, "TERM=xterm")
	}
	return out
}

func getenv(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v
		}
	}
	return ""
}

// lookPath finds name in the container's PATH (not the init's).
func lookPath(name string, env []string, cwd string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if err := isExecutable(p); err != nil {
			code := 126
			if errors.Is(err, os.ErrNotExist) {
				code = 127
			}
			return "", &commandError{code: code, err: fmt.Errorf("command %q: %w", name, err)}
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(getenv(env, "PATH")) {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", &commandError{code: 127, err: fmt.Errorf("command %q not found in PATH %s", name, getenv(env, "PATH"))}
}

// commandError is a command that cannot be run, with the exit status a
// shell gives for it.
type commandError struct {
	code int
	err  error
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("permission denied: not executable")
	}
	return nil
}
