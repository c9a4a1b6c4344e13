package debugger

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiln-build/kiln/executor"
)

func flowCommands() []command {
	return []command{
		{name: "next", alias: "n", usage: "run this step, stop before the next", run: next},
		{name: "continue", alias: "c", usage: "continue [--all]: run to the next breakpoint or failure; the other branches wait until this one stops or ends, unless --all", run: cont},
		{name: "skip", usage: "drop this step: its layer is absent, later steps build without it", run: skip},
		{name: "retry", usage: "run the failed step again", run: retry},
		{name: "edit", usage: "edit CMD: run CMD instead of this step's command, for this build only", run: edit},
		{name: "quit", alias: "q", usage: "abort the build: its containers and mounts are removed", run: quit},
	}
}

func next(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	d.stepping = true
	s.action = &executor.Action{Kind: executor.Continue}
	return nil
}

func cont(_ context.Context, d *Debugger, s *stop, args []string, _ string) error {
	switch {
	case len(args) == 1 && args[0] == "--all":
		s.all = true
	case len(args) > 0:
		return errors.New("usage: continue [--all]")
	}
	d.stepping = false
	s.action = &executor.Action{Kind: executor.Continue}
	return nil
}

// notTest refuses what only a step can do.
func notTest(v *executor.NodeView, what string) error {
	if v.Test {
		return fmt.Errorf("%q is a test: it cannot be %s (continue or quit)", v.Name, what)
	}
	return nil
}

func skip(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	if err := notTest(s.v, "skipped"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "skipping %q: its layer is absent from the image; the steps after it build without it\n", s.v.Name)
	s.action = &executor.Action{Kind: executor.Skip}
	return nil
}

func retry(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	if !s.after {
		return errors.New("the step has not run yet: use next or continue")
	}
	d.forget(s.v.Node)
	s.action = &executor.Action{Kind: executor.Retry}
	return nil
}

func edit(_ context.Context, d *Debugger, s *stop, _ []string, rest string) error {
	if err := notTest(s.v, "edited"); err != nil {
		return err
	}
	if len(s.v.Command) == 0 {
		return fmt.Errorf("%q is not a run step: only a command can be edited", s.v.Name)
	}
	if rest == "" {
		return fmt.Errorf("usage: edit CMD (the command now: %q)", shellOf(s.v.Command))
	}
	d.forget(s.v.Node)
	s.action = &executor.Action{Kind: executor.Edit, Command: rest}
	return nil
}

func quit(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	d.quit, s.all = true, true
	s.action = &executor.Action{Kind: executor.Abort}
	return nil
}

// shellOf shows a command as it was written.
func shellOf(argv []string) string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		return argv[2]
	}
	return fmt.Sprint(argv)
}
