package debugger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor"
)

func shellCommands() []command {
	return []command{
		{name: "shell", alias: "sh", usage: "shell [--before] [CMD]: a shell (or CMD) in a throwaway container on the step's filesystem, the toolbox at /.kiln", run: shell},
		{name: "commit", usage: "keep what the last shell changed, for this build only (not cached: later builds run the step again); see below", run: commit},
	}
}

func shell(ctx context.Context, d *Debugger, s *stop, args []string, rest string) error {
	b, args := before(args)
	if b {
		rest = strings.TrimSpace(strings.TrimPrefix(rest, "--before"))
	}
	p := engine.Process{Args: []string{"/bin/sh"}, Env: s.v.Env, Cwd: s.v.Workdir, User: s.v.User}
	if len(args) > 0 {
		p.Args = []string{"/bin/sh", "-c", rest}
	}
	tty := IsTerminal(d.opts.In)
	var st engine.Status
	var err error
	switch {
	case tty:
		st, err = d.runTTY(ctx, s, p, b)
	case len(args) == 0:
		return errors.New("an interactive shell needs a terminal: give a command, shell CMD")
	default:
		p.Stdout, p.Stderr = d.out, d.out
		st, err = s.v.Run(ctx, p, b)
	}
	if err != nil {
		return err
	}
	s.shelled = true
	if st.Code != 0 {
		fmt.Fprintf(d.out, "shell: exit status %d\n", st.Code)
	}
	return nil
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
func (d *Debugger) runTTY(ctx context.Context, s *stop, p engine.Process, before bool) (engine.Status, error) {
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
	return s.v.Run(ctx, p, before)
}
