package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/debugger/dap"
	"github.com/kiln-build/kiln/fsm"
)

func newDAPCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "dap",
		Short: "Debug builds from an editor: a Debug Adapter Protocol server on stdin and stdout",
		Long: `Dap speaks the Debug Adapter Protocol on stdin and stdout, the way VS Code
and Neovim's nvim-dap run a debug adapter. A launch request names the
manifest (or Dockerfile) and the build's flags:

  {"manifest": "app.yml", "cwd": "/src/app", "context": ".", "tag": "app:dev",
   "values": ["prod.yml"], "set": ["k=v"], "buildArgs": ["K=V"],
   "target": "", "root": "", "noCache": false, "stopOnEntry": true}

Relative paths are relative to cwd, else to the manifest's directory;
never to the directory kiln dap runs in. Breakpoints go on the first
line of a step or test (or of a use: line, for a module's steps); not
on an instruction that only sets the image's config (CMD, ENV, LABEL…),
where no step runs. A failed step stops as an exception; a build the
session stops ends as interrupted (130). In the debug
console, a command runs on the stopped step's filesystem; "terminal"
opens a shell there in the editor's terminal (kiln debug attach on a
copy kept until the session ends). See README.md for launch.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dap.Serve(cmd.Context(), a.stdin, a.stdout, dap.Options{
				Load: a.dapLoad, Build: a.dapBuild, Terminal: a.dapTerminal,
				// kiln build's, with 130 for a build the session stopped.
				Status: func(ctx context.Context, err error) int { return exitStatus(ctx, err, true) },
				Forget: func(ctx context.Context, name string) error {
					s, err := a.store(ctx)
					if err != nil {
						return err
					}
					return s.Remove(ctx, keptRepo+name)
				},
			})
		},
	}
}

// dapFlags are the build flags of a launch, and the build's arguments.
func (a *app) dapFlags(l dap.LaunchArgs) (buildFlags, []string) {
	if l.Root != "" {
		a.root = l.Root
	}
	f := buildFlags{progress: "plain", network: "host", noCache: l.NoCache}
	f.file, f.values, f.set, f.buildArgs, f.target = l.Manifest, l.Values, l.Set, l.BuildArgs, l.Target
	f.modules = &appModules{a: a}
	if l.Tag != "" {
		f.tags = []string{l.Tag}
	}
	var args []string
	if l.Context != "" {
		args = []string{l.Context}
	}
	return f, args
}

// dapLoad compiles the launch's manifest, for its breakpoints.
func (a *app) dapLoad(ctx context.Context, l dap.LaunchArgs) (*dag.Graph, error) {
	f, args := a.dapFlags(l)
	cm, err := a.compile(ctx, f.manifestFlags, args)
	return cm.graph, err
}

// dapBuild builds as kiln build does, printing to console.
func (a *app) dapBuild(ctx context.Context, l dap.LaunchArgs, wrap func(fsm.Observer) fsm.Observer, console io.Writer) error {
	// An app of its own: the build's goroutine must not share the one
	// whose root the requests resolve.
	b := *a
	b.stdin, b.stdout, b.stderr = strings.NewReader(""), console, console
	f, args := b.dapFlags(l)
	f.observe = wrap
	return b.build(ctx, f, args)
}

// dapTerminal keeps a stopped step's filesystem and returns the kiln
// debug attach command line that opens a shell on it.
func (a *app) dapTerminal(ctx context.Context, v *executor.NodeView) (string, []string, error) {
	name, err := a.keepFailed(ctx, v)
	if err != nil {
		return "", nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("finding kiln's own binary: %w", err)
	}
	argv := []string{exe, "--root", a.root, "debug", "attach", name}
	if os.Getenv("SUDO_USER") != "" {
		// kiln dap runs under sudo; the editor's terminal runs as its user.
		argv = append([]string{"sudo"}, argv...)
	}
	return name, argv, nil
}
