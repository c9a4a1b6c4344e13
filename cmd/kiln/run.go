package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/manifest"
)

type runFlags struct {
	rm, interactive, tty bool
	network              string
	env                  []string
	workdir, user        string
	hostname, name       string
	entrypoint           string
	memory               string
	pids                 int64
	cpus                 float64
	timeout              time.Duration
	mounts               []engine.Mount // further mounts (kiln debug attach's /.kiln)
	platform             string         // --platform: an index's image for it, emulated when foreign
}

func newRunCommand(a *app) *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [-- COMMAND [ARG...]]",
		Short: "Run a command in a new container",
		Long: `Run runs a command (by default the image's entrypoint and cmd) in a new
container from a local image, or from oci-layout:DIR[:TAG] or
docker-archive:FILE, streams its output, and exits with its exit status.
The container and its writable layer are always removed when it ends.`,
		Example: `  kiln run busybox -- echo hello
  kiln run -it busybox`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			command := args[1:]
			if len(command) > 0 && command[0] == "--" {
				command = command[1:]
			}
			// As docker run: 125 when kiln could not run the container
			// (an unknown image too), else the container's status.
			return withCode(exitFault, a.runContainer(cmd.Context(), f, args[0], command))
		},
	}
	c.Flags().SetInterspersed(false)
	fl := c.Flags()
	fl.BoolVar(&f.rm, "rm", true, "remove the container when it exits (always the case)")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&f.tty, "tty", "t", false, "give the process a terminal")
	fl.StringVar(&f.network, "network", "host", "network: host or none")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable KEY=VALUE, or pass KEY from kiln's (repeatable)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "user, as uid[:gid] or name[:group]")
	fl.StringVar(&f.hostname, "hostname", "", "hostname of the container")
	fl.StringVar(&f.name, "name", "", "name of the container")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "override the image's entrypoint (a program)")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit, e.g. 512m or 2g")
	fl.StringVar(&f.platform, "platform", "", "run IMAGE's image for os/arch[/variant] (of an image index), emulated when foreign (kiln binfmt)")
	fl.Int64Var(&f.pids, "pids-limit", 0, "most processes at once (default 2048)")
	fl.Float64Var(&f.cpus, "cpus", 0, "CPU limit, in CPUs (1.5)")
	fl.DurationVar(&f.timeout, "timeout", 0, "kill the container after this long (e.g. 30s)")
	return c
}

func (a *app) runContainer(ctx context.Context, f runFlags, ref string, command []string) error {
	network, err := engine.ParseNetwork(f.network)
	if err != nil {
		return err
	}
	mem, err := memoryFlag(f.memory)
	if err != nil {
		return err
	}
	s, err := a.store(ctx)
	if err != nil {
		return err
	}
	img, err := a.runImage(ctx, s, ref, f.platform)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config of %s: %w", ref, err)
	}
	p, err := processFor(cf.Config, f, command)
	if err != nil {
		return err
	}
	dirs, err := s.LayerDirs(ctx, img)
	if err != nil {
		return err
	}
	if dirs, err = s.Stack(ctx, dirs, maxStack()); err != nil {
		return err
	}
	sn, rt, err := a.engine(ctx)
	if err != nil {
		return err
	}
	id := f.name
	if id == "" {
		id = randomID()
	}
	mounts, err := sn.Prepare(ctx, id, dirs)
	if err != nil {
		return err
	}
	defer sn.Remove(context.WithoutCancel(ctx), id) //nolint:errcheck // best effort; swept later otherwise

	spec := engine.Spec{
		ID: id, Rootfs: mounts, Mounts: f.mounts, Process: p, Hostname: f.hostname, Network: network,
		Limits:  engine.Limits{Pids: f.pids, Memory: mem, CPUs: f.cpus},
		Timeout: f.timeout,
	}
	var st engine.Status
	if f.tty {
		st, err = a.runTTY(ctx, rt, spec)
	} else {
		if f.interactive {
			spec.Process.Stdin = a.stdin
		}
		spec.Process.Stdout, spec.Process.Stderr = a.stdout, a.stderr
		st, err = runAndWait(ctx, rt, spec)
	}
	if ctx.Err() != nil {
		// Ctrl-C or SIGTERM: the container is gone; say so, and end as
		// an interrupted program does.
		fmt.Fprintf(a.stderr, "kiln: interrupted: container %s cancelled and removed\n", id)
		return exitError{130}
	}
	if err != nil {
		return err
	}
	if e := st.Err(); e != nil {
		fmt.Fprintf(a.stderr, "kiln: container %s %v\n", id, e)
	}
	if st.Code != 0 {
		return exitError{st.Code}
	}
	return nil
}

// runAndWait creates the container, waits for it and deletes it.
func runAndWait(ctx context.Context, rt engine.Runtime, spec engine.Spec) (engine.Status, error) {
	c, err := rt.Create(ctx, spec)
	if err != nil {
		return engine.Status{}, err
	}
	st, err := c.Wait(ctx)
	if derr := c.Delete(context.WithoutCancel(ctx)); err == nil {
		err = derr
	}
	return st, err
}

// runTTY runs the container on a terminal of its own, with kiln's
// terminal in raw mode, passing input, output and window size through.
func (a *app) runTTY(ctx context.Context, rt engine.Runtime, spec engine.Spec) (engine.Status, error) {
	in, _ := a.stdin.(*os.File)
	interactive := in != nil && term.IsTerminal(int(in.Fd()))
	if interactive {
		old, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			defer term.Restore(int(in.Fd()), old) //nolint:errcheck // nothing to do about it
		}
	}
	winch := make(chan os.Signal, 1)
	defer signal.Stop(winch)
	spec.Process.Terminal = true
	spec.Process.Stdin, spec.Process.Stdout = a.stdin, a.stdout
	spec.Process.Console = func(console *os.File) {
		if !interactive {
			return
		}
		_ = pty.InheritSize(in, console)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			for range winch {
				_ = pty.InheritSize(in, console)
			}
		}()
	}
	return runAndWait(ctx, rt, spec)
}

// processFor builds the process from the image config and the flags, as
// docker run does: a command replaces the image's cmd, and runs through
// its entrypoint.
func processFor(cfg v1.Config, f runFlags, command []string) (engine.Process, error) {
	entrypoint := cfg.Entrypoint
	if f.entrypoint != "" {
		entrypoint = []string{f.entrypoint}
		if len(command) == 0 {
			cfg.Cmd = nil
		}
	}
	args := append([]string{}, entrypoint...)
	if len(command) > 0 {
		args = append(args, command...)
	} else {
		args = append(args, cfg.Cmd...)
	}
	if len(args) == 0 {
		return engine.Process{}, fmt.Errorf("no command given, and the image has no entrypoint or cmd: add -- COMMAND")
	}
	env := append([]string{}, cfg.Env...)
	for _, e := range f.env {
		if !strings.Contains(e, "=") {
			v, ok := os.LookupEnv(e)
			if !ok {
				continue
			}
			e += "=" + v
		}
		env = manifest.SetEnv(env, e)
	}
	p := engine.Process{Args: args, Env: env, Cwd: cfg.WorkingDir, User: cfg.User}
	if f.workdir != "" {
		p.Cwd = f.workdir
	}
	if f.user != "" {
		p.User = f.user
	}
	return p, nil
}

// memoryFlag reads a --memory value ("" for no limit) with the
// manifest's size rules (512m, 2g, 100k or bytes).
func memoryFlag(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := manifest.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("--memory: %w", err)
	}
	return n, nil
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "run-" + hex.EncodeToString(b)
}
