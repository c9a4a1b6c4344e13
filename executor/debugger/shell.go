package debugger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor"
)

func shellCommands() []command {
	return []command{
		{name: "shell", alias: "sh", usage: "shell [--before | --service NAME] [CMD]: a shell (or CMD) in a throwaway container on the step's filesystem, the toolbox at /.kiln; with --service, in the running container of the test's (or run step's) service NAME", run: shell},
		{name: "commit", usage: "keep what the last shell changed, for this build only (not cached: later builds run the step again); see below", run: commit},
	}
}

func shell(ctx context.Context, d *Debugger, s *stop, args []string, rest string) error {
	if len(args) > 0 && args[0] == "--service" {
		return serviceShell(ctx, d, s, args[1:], rest)
	}
	b, args := before(args)
	if b {
		rest = strings.TrimSpace(strings.TrimPrefix(rest, "--before"))
	}
	p := engine.Process{Args: []string{"/bin/sh"}, Env: s.v.Env, Cwd: s.v.Workdir, User: s.v.User}
	if len(args) > 0 {
		p.Args = []string{"/bin/sh", "-c", rest}
	}
	st, err := d.runShell(ctx, p, len(args) > 0, func(p engine.Process) (engine.Status, error) { return s.v.Run(ctx, p, b) })
	if err != nil {
		return err
	}
	s.shelled = true
	if st.Code != 0 {
		fmt.Fprintf(d.out, "shell: exit status %d\n", st.Code)
	}
	return nil
}

// serviceShell runs a shell (or a command) in a service's container:
// shell --service NAME [CMD]. What it changes there is the service's,
// not the step's: commit does not keep it.
func serviceShell(ctx context.Context, d *Debugger, s *stop, args []string, rest string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: shell --service NAME [CMD] (the services here: %s)", servicesOf(s.v))
	}
	name := args[0]
	rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(rest, "--service")), name))
	p := engine.Process{Args: []string{"/bin/sh"}}
	if len(args) > 1 {
		p.Args = []string{"/bin/sh", "-c", rest}
	}
	st, err := d.runShell(ctx, p, len(args) > 1, func(p engine.Process) (engine.Status, error) { return s.v.ServiceExec(ctx, name, p) })
	if err != nil {
		return err
	}
	if st.Code != 0 {
		fmt.Fprintf(d.out, "shell: exit status %d\n", st.Code)
	}
	return nil
}

func servicesOf(v *executor.NodeView) string {
	if len(v.Services) == 0 {
		return "none"
	}
	return strings.Join(v.Services, ", ")
}

// runShell runs p with run: on the terminal, or, given a command (cmd),
// with its output to the debugger's.
func (d *Debugger) runShell(ctx context.Context, p engine.Process, cmd bool, run func(engine.Process) (engine.Status, error)) (engine.Status, error) {
	switch {
	case IsTerminal(d.opts.In):
		return d.runTTY(ctx, p, run)
	case !cmd:
		return engine.Status{}, errors.New("an interactive shell needs a terminal: give a command, shell CMD")
	}
	// One writer for both: the engine copies each from a pipe of its own,
	// at once.
	w := &lockedWriter{w: d.out}
	p.Stdout, p.Stderr = w, w
	return run(p)
}

// lockedWriter serialises the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// commitHelp says what commit keeps, and why.
const commitHelp = `Commit: after a step failed, the last shell's changes (made on what the
step left, or with shell --before on what it started from) replace the
step's layer. At a stop before a step, the step still runs (or comes from
the cache) as it would have, then the shell's changes go on top as a layer
of their own, named so in the image's history: the shell ran before the
step, and committing must not drop the step's work without a word (where
the shell and the step change the same file, the shell's version wins).
To replace a step's command instead, use edit; to drop it, skip. (Docker's
and BuildKit's debuggers have no commit: a shell's changes are lost.)
`

func commit(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	if err := notTest(s.v, "committed"); err != nil {
		return err
	}
	if !s.shelled {
		return errors.New("no shell ran at this stop: run shell, change what the step should have, exit, then commit")
	}
	if s.after {
		fmt.Fprintf(d.out, "committing the last shell's changes as %q, for this build only\n", s.v.Name)
	} else {
		fmt.Fprintf(d.out, "commit: %q runs, then the last shell's changes go on top of it as a layer of their own, for this build only\n", s.v.Name)
	}
	s.action = &executor.Action{Kind: executor.Commit}
	return nil
}

// runTTY runs p on a terminal of its own, with the debugger's terminal
// in raw mode, passing input, output and window size through.
func (d *Debugger) runTTY(ctx context.Context, p engine.Process, run func(engine.Process) (engine.Status, error)) (engine.Status, error) {
	in := d.opts.In.(*os.File)
	old, err := term.MakeRaw(int(in.Fd()))
	if err == nil {
		defer term.Restore(int(in.Fd()), old) //nolint:errcheck // nothing to do about it
	}
	winch := make(chan os.Signal, 1)
	defer signal.Stop(winch)
	done := make(chan struct{})
	defer close(done)
	p.Terminal = true
	p.Stdin, p.Stdout = d.in.borrow(done), d.out
	p.Console = func(console *os.File) {
		_ = pty.InheritSize(in, console)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			for {
				select {
				case <-winch:
					_ = pty.InheritSize(in, console)
				case <-done:
					return
				}
			}
		}()
	}
	return run(p)
}
