package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/debugger"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/toolbox"
)

// debugFlags are kiln build's debugger flags.
type debugFlags struct {
	debug, onFail bool
	breaks        []string
}

func (f *debugFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVar(&f.debug, "debug", false, "step through the build: a prompt before the first step, at breakpoints and on failures (type help)")
	fl.BoolVar(&f.onFail, "debug-on-fail", false, "no prompt until a step fails; without a terminal, print the failed step's changes and keep its filesystem for kiln debug attach")
	fl.StringArrayVar(&f.breaks, "break", nil, "stop before the step at LINE, FILE:LINE, or STEP (a node key or part of its name) (repeatable)")
}

// observer wraps obs in a debugger when a debugger flag is given; the
// debugger holds screen, the live view (or nil), while it has the
// terminal.
func (f *debugFlags) observer(a *app, obs fsm.Observer, screen debugger.Screen) (fsm.Observer, error) {
	if !f.debug && !f.onFail && len(f.breaks) == 0 {
		return obs, nil
	}
	return debugger.New(debugger.Options{
		In: a.stdin, Out: a.stderr, Observer: obs,
		Prompt:  f.debug || len(f.breaks) > 0 || debugger.IsTerminal(a.stdin),
		NoEntry: !f.debug,
		Breaks:  f.breaks,
		Keep:    a.keepFailed,
		Screen:  screen,
		AttachCommand: func(name string) string {
			if a.root != defaultRoot() {
				return "kiln --root " + shellQuote(a.root) + " debug attach " + name
			}
			return "kiln debug attach " + name
		},
	})
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// keptRepo is where kept failed steps are tagged in the local store: as
// images, their layers are safe from the sweep of leftover snapshots and
// from kiln cache prune, until kiln debug rm.
const keptRepo = "kiln-debug/"

// keepFailed tags a failed step's filesystem in the store, under a name
// made of its node key and a random suffix.
func (a *app) keepFailed(ctx context.Context, v *executor.NodeView) (string, error) {
	img, err := v.Image(ctx)
	if err != nil {
		return "", err
	}
	s, err := a.store(ctx)
	if err != nil {
		return "", err
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-', r == '.', r == '_':
			return r
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, v.Node) + "-" + strings.TrimPrefix(randomID(), "run-")[:6]
	if _, err := s.Tag(ctx, img, keptRepo+name); err != nil {
		return "", fmt.Errorf("keeping the failed step as %s: %w", name, err)
	}
	if err := a.trustKept(img, name); err != nil {
		return "", fmt.Errorf("keeping the failed step as %s: %w", name, err)
	}
	return name, nil
}

// keptTrustDir holds, per kept step this root's kiln made, the digest of
// its image. kiln debug attach mounts the host paths that a kept image's
// toolbox label names only when the image has that digest: an image
// tagged kiln-debug/NAME by other means (a pull, an import) carries a
// label anybody could have written, naming any host directory.
func (a *app) keptTrustDir() string { return filepath.Join(a.root, "debug", "kept") }

func (a *app) trustKept(img v1.Image, name string) error {
	d, err := img.Digest()
	if err != nil {
		return err
	}
	dir := a.keptTrustDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, name), []byte(d.String()+"\n"), 0o600, nil)
}

// trustedKept reports whether img is the image this root's kiln kept as
// name.
func (a *app) trustedKept(img v1.Image, name string) bool {
	b, err := os.ReadFile(filepath.Join(a.keptTrustDir(), filepath.Base(name)))
	if err != nil {
		return false
	}
	d, err := img.Digest()
	return err == nil && strings.TrimSpace(string(b)) == d.String()
}

func newDebugCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "debug",
		Short: "Open, list and remove the failed steps kiln build --debug-on-fail kept",
		Long: `Without a terminal, kiln build --debug-on-fail prints a failed step's changes
and keeps its filesystem (its parent's layers and what it wrote before it
failed) under a name it prints. kiln debug attach NAME opens a shell there,
with the step's environment, working directory and user.`,
	}
	c.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the kept failed steps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.debugList(cmd.Context())
		},
	}, &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove kept failed steps",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			for _, n := range args {
				n = strings.TrimPrefix(n, keptRepo) // as kiln images shows it
				if err := s.Remove(cmd.Context(), keptRepo+n); err != nil {
					return fmt.Errorf("removing kept step %s: %w (kiln debug ls lists them)", n, err)
				}
				if err := os.Remove(filepath.Join(a.keptTrustDir(), filepath.Base(n))); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("removing kept step %s: %w", n, err)
				}
			}
			return nil
		},
	})
	var attach runFlags
	ac := &cobra.Command{
		Use:   "attach NAME [-- COMMAND [ARG...]]",
		Short: "Open a shell (or run COMMAND) on a kept failed step's filesystem",
		Long: `Attach runs /bin/sh (or COMMAND) in a new container on the kept step's
filesystem, with the step's environment, working directory and user, and the
toolbox the build's containers had at /.kiln: kiln's binary, the
template values, and each toolbox: entry that is still there (a
directory of the build context that is gone since, or an image no
longer in the local store, is left out, with a warning; a directory is
mounted as it is now). On a terminal, interactively. What it writes is
thrown away.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			command := args[1:]
			if len(command) > 0 && command[0] == "--" {
				command = command[1:]
			}
			name := strings.TrimPrefix(args[0], keptRepo) // as kiln images shows it
			attach.interactive = true
			attach.tty = debugger.IsTerminal(a.stdin)
			mounts, drop, err := a.attachToolbox(cmd.Context(), name)
			if err != nil {
				return err
			}
			defer drop()
			attach.mounts = mounts
			return a.runContainer(cmd.Context(), attach, keptRepo+name, command)
		},
	}
	ac.Flags().SetInterspersed(false)
	ac.Flags().StringVar(&attach.network, "network", "host", "network: host or none")
	c.AddCommand(ac)
	return c
}

// debugList prints the kept failed steps: name, step, where, when.
func (a *app) debugList(ctx context.Context) error {
	s, err := a.store(ctx)
	if err != nil {
		return err
	}
	list, err := s.List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTEP\tAT\tKEPT")
	for _, im := range list {
		name, ok := strings.CutPrefix(im.Name, keptRepo)
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, ":latest")
		img, err := s.Image(ctx, im.Name)
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		l := cf.Config.Labels
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, l[executor.LabelDebugStep], l[executor.LabelDebugPos], im.Created.Format("2006-01-02 15:04:05"))
	}
	return w.Flush()
}

// attachToolbox makes the /.kiln of kept step name again, from the
// toolbox.Record its build left in its labels: kiln's binary, the
// template values, and the toolbox entries that are still there. It
// warns about the others, and about a binary that is gone (this kiln
// stands in for it). drop removes the values file.
func (a *app) attachToolbox(ctx context.Context, name string) (mounts []engine.Mount, drop func(), err error) {
	drop = func() {}
	s, err := a.store(ctx)
	if err != nil {
		return nil, drop, err
	}
	img, err := s.Image(ctx, keptRepo+name)
	if err != nil {
		return nil, drop, fmt.Errorf("opening kept step %s: %w (kiln debug ls lists them)", name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, drop, fmt.Errorf("reading the config of kept step %s: %w", name, err)
	}
	label, ok := cf.Config.Labels[executor.LabelDebugToolbox]
	if !ok {
		return nil, drop, nil // the build's containers had no /.kiln
	}
	if !a.trustedKept(img, name) {
		fmt.Fprintf(a.stderr, "kiln: warning: kept step %s was not kept by a build on this root (it was pulled, imported or tagged by hand): its /.kiln, which names host paths, is not mounted\n", name)
		return nil, drop, nil
	}
	rec, err := toolbox.ParseRecord(label)
	if err != nil {
		return nil, drop, fmt.Errorf("kept step %s: %w", name, err)
	}
	warn := func(format string, args ...any) {
		fmt.Fprintf(a.stderr, "kiln: warning: "+format+"\n", args...)
	}
	binary := rec.Binary
	if _, serr := os.Stat(binary); binary != "" && serr != nil {
		if binary, err = kilnBinary(""); err != nil {
			return nil, drop, err
		}
		warn("the build's kiln binary is gone (%v): %s is this kiln, %s", serr, toolbox.Binary, binary)
	}
	tools, warnings := rec.Resolve(ctx, func(ctx context.Context, ref, digest string) ([]string, error) {
		img, err := s.Image(ctx, digest)
		if err != nil {
			// Not named in the store (oci-layout:, docker-archive:):
			// its reference, if it still gives that image.
			img, err = s.Resolve(ctx, ref)
			if err == nil {
				if d, derr := img.Digest(); derr != nil || d.String() != digest {
					err = fmt.Errorf("%s is another image now", ref)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("image %s is no longer in the local store (%w): pull or import %s again", digest, err, ref)
			}
		}
		return s.LayerDirs(ctx, img)
	})
	for _, w := range warnings {
		warn("%s", w)
	}
	values, err := toolbox.WriteValues(filepath.Join(a.root, "tmp"), strconv.Itoa(os.Getpid())+"-values-*.json", rec.Values)
	if err != nil {
		return nil, drop, err
	}
	return toolbox.Mounts(binary, values, tools), func() { os.Remove(values) }, nil
}
