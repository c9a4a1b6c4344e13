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
		{name: "commit", usage: "keep what the last shell changed as this step's result, for this build only: it is not cached, and later builds run the step again", run: commit},
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

func commit(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	if err := notTest(s.v, "committed"); err != nil {
		return err
	}
	if !s.shelled {
		return errors.New("no shell ran at this stop: run shell, change what the step should have, exit, then commit")
	}
	fmt.Fprintf(d.out, "committing the last shell's changes as %q, for this build only\n", s.v.Name)
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
