package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/debugger"
	"github.com/kiln-build/kiln/lifecycle"
)

// debugFlags are kiln build's debugger flags.
type debugFlags struct {
	debug, onFail bool
	breaks        []string
}

func (f *debugFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVar(&f.debug, "debug", false, "step through the build: a prompt before the first step, at breakpoints and on failures (type help)")
	fl.BoolVar(&f.onFail, "debug-on-fail", false, "no prompt until a step fails; without a terminal, print the failed step's changes and keep them under the root's debug/")
	fl.StringArrayVar(&f.breaks, "break", nil, "stop before the step at LINE, FILE:LINE, or STEP (a node key or part of its name) (repeatable)")
}

// observer wraps obs in a debugger when a debugger flag is given.
func (f *debugFlags) observer(a *app, obs lifecycle.Observer) (lifecycle.Observer, error) {
	if !f.debug && !f.onFail && len(f.breaks) == 0 {
		return obs, nil
	}
	return debugger.New(debugger.Options{
		In: a.stdin, Out: a.stderr, Observer: obs,
		Prompt:  f.debug || len(f.breaks) > 0 || debugger.IsTerminal(a.stdin),
		NoEntry: !f.debug,
		Breaks:  f.breaks,
		KeepDir: filepath.Join(a.root, "debug"),
	})
}
