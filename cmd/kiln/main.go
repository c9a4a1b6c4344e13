// This file holds the entry point and the flags every command shares;
// each other file holds one command (doc.go describes the command).

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/container"
	"github.com/kiln-build/kiln/engine/idrange"
	"github.com/kiln-build/kiln/engine/snapshot"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/internal/rootless/nsjoin"
	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/toolbox"
)

func main() {
	// A container's init and exec helper are this binary, re-executed.
	if container.Main() {
		return
	}
	// What kiln inherited past stdio never reaches a container, nor the
	// rootless namespace's holder.
	if err := container.StdioOnly(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
		os.Exit(125)
	}
	// As an ordinary user, kiln runs again in a user namespace of its own
	// (not as a container's helpers, which run as the step's user).
	if !toolbox.InContainer() {
		warn := func(msg string) { fmt.Fprintln(os.Stderr, "kiln: warning:", msg) }
		if done, code, err := rootless.Enter(warn, nsjoin.Joined()); done {
			if err != nil {
				fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
				code = exitFault
			}
			os.Exit(code)
		}
	}
	// Run as /.kiln/bin/kiln in a build container: the helpers.
	if toolbox.InContainer() {
		os.Exit(runHelper(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// kiln's exit statuses, for a CI system to act on (kiln --help lists
// them; kiln run passes on its container's instead).
const (
	exitFailed      = 1   // the build ran, and a step or a test failed
	exitBadInput    = 2   // the input is wrong: usage, manifest, values, files; nothing ran
	exitFault       = 125 // kiln could not do its work: its own fault, or its environment's
	exitInterrupted = 130 // SIGINT or SIGTERM
)

const exitStatusHelp = `Exit status:
  0    success
  1    the build ran, and a step or a test failed (kiln outdated: something is outdated)
  2    the input is wrong (usage, flags, manifest, values, missing files or images): nothing ran
  130  interrupted (SIGINT, SIGTERM)
  125  kiln could not do its work (its own fault, or its environment's: disk, registry)
kiln run ends with its container's status, as docker run does.
`

// exitError ends kiln with a status and no message of its own, as when
// kiln run passes on the exit status of the container.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// interruptedError ends a command that SIGINT or SIGTERM cancelled.
type interruptedError struct{}

func (interruptedError) Error() string {
	return "interrupted: the build was cancelled and its containers removed"
}

// cleanupGrace is how long kiln may go on cleaning up after a second
// SIGINT or SIGTERM before it exits anyway: its containers die with it
// (PDEATHSIG), its mounts with their namespaces, and the next kiln sweeps
// the rest.
const cleanupGrace = 10 * time.Second

// onSignals cancels ctx at the first SIGINT or SIGTERM. At a second one,
// kiln goes on cleaning up for cleanupGrace at most, then exits with
// status 130. Call stop when the command has ended.
func onSignals(ctx context.Context, stderr io.Writer) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel(interruptedError{})
		case <-done:
			return
		}
		select {
		case <-sigs:
		case <-done:
			return
		}
		select {
		case <-time.After(cleanupGrace):
			fmt.Fprintf(stderr, "kiln: interrupted again and still cleaning up after %s: exiting; the next kiln sweeps what is left\n", cleanupGrace)
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// codeError is an error that ends kiln with its exit status code, set
// where its cause is known; run finds it with errors.As.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// withCode returns err, which ends kiln with status code; nil stays nil.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codeError{code: code, err: err}
}

// badInput returns err, which says the input is wrong (status 2).
func badInput(err error) error { return withCode(exitBadInput, err) }

// exitStatus is the status kiln ends with after err, from a command that
// started running if started (else cobra refused its flags or
// arguments), under ctx (which signals cancel).
func exitStatus(ctx context.Context, err error, started bool) int {
	var ee exitError
	var ce *codeError
	var se *container.StartError
	var me *manifest.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &se) && se.Code != 0:
		return se.Code // kiln run: the command could not be run (126, 127)
	case ctx.Err() != nil, errors.As(err, &interruptedError{}):
		return exitInterrupted // whatever the cancel made fail
	case errors.As(err, &ce):
		return ce.code
	case !started, errors.As(err, &me), errors.Is(err, store.ErrNotFound):
		return exitBadInput
	}
	return exitFault
}

// run runs the kiln command line args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := onSignals(ctx, stderr)
	defer stop()
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCommand(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(stderr, "kiln: %v\n", err)
	}
	return exitStatus(ctx, err, a.started)
}

// noteStart makes every command of c note in a.started that it started
// running: an error before that is cobra's, about flags or arguments.
func noteStart(a *app, c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			a.started = true
			return run(cmd, args)
		}
	}
	if run := c.Run; run != nil {
		c.Run = func(cmd *cobra.Command, args []string) {
			a.started = true
			run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		noteStart(a, sub)
	}
}

// app holds the global flags and what the commands open from them.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	root           string
	snapshotter    string
	reg            registryFlags
	pulls          *basePulls // kiln build --pull: bases pulled again, once each
	started        bool       // a command began to run: cobra took its flags and arguments

	// userns, with kiln build --userns auto, allocates the ranges of the
	// steps' user namespaces.
	userns *idrange.Allocator
}

func defaultRoot() string {
	if r := os.Getenv("KILN_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 && !rootless.Active() {
		return "/var/lib/kiln"
	}
	// A user's data, as the XDG base directories place it.
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "kiln")
	}
	h := os.Getenv("HOME")
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); !filepath.IsAbs(h) && err == nil {
		h = u.HomeDir
	}
	return filepath.Join(h, ".local", "share", "kiln")
}

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "kiln",
		Short:         "kiln builds container images: daemonless, graph-driven, cached",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.root, "root", defaultRoot(), "directory of kiln's image store, cache and state (env KILN_ROOT)")
	root.PersistentFlags().StringVar(&a.snapshotter, "snapshotter", "auto", "how containers get a writable root: auto, overlayfs or copy")
	root.AddCommand(
		newBuildCommand(a),
		newCacheCommand(a),
		newRenderCommand(a),
		newGraphCommand(a),
		newImportCommand(a),
		newImagesCommand(a),
		newRmiCommand(a),
		newRunCommand(a),
		newPushCommand(a),
		newVersionCommand(a),
		newHistoryCommand(a),
		newExplainCommand(a),
		newOutdatedCommand(a),
		newModuleCommand(a),
		newLockCommand(a),
		newDebugCommand(a),
		newDAPCommand(a),
		newBinfmtCommand(a),
	)
	root.AddCommand(registryCommands(a)...)
	addRegistryFlags(root, a)
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + exitStatusHelp)
	noteStart(a, root)
	return root
}

// cgroupParent names the cgroup under which the containers of root run:
// one per root, so that the sweep of one root never touches the
// containers of another.
func cgroupParent(root string) string {
	sum := sha256.Sum256([]byte(root))
	return "kiln-" + hex.EncodeToString(sum[:6])
}

// store opens the image store under --root.
func (a *app) store(ctx context.Context) (*store.Store, error) {
	abs, err := filepath.Abs(a.root)
	if err != nil {
		return nil, err
	}
	a.root = abs
	// What a crashed kiln left is swept before any layer directory is
	// handed out: a crash may have touched them, so they are checked
	// again on their next use (the store's epoch, see DistrustLayerDirs).
	swept, err := snapshot.Sweep(ctx, filepath.Join(a.root, "snapshots"))
	if err != nil {
		return nil, err
	}
	s, err := store.Open(ctx, a.root, store.WithWarnings(func(msg string) {
		fmt.Fprintln(a.stderr, "kiln: warning:", msg)
	}), store.WithRemoteLayers(a.remoteLayer))
	if err != nil {
		return nil, err
	}
	if len(swept) > 0 {
		if err := s.DistrustLayerDirs(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// remoteLayer is the layer blob desc of the registry repository repo, as
// the store fetches a lazy layer (a remote cache's): reached with the
// global registry flags and kiln login's credentials, and mountable into
// another repository of that registry by a push.
func (a *app) remoteLayer(ctx context.Context, repo string, desc v1.Descriptor) (v1.Layer, error) {
	rc, err := a.registry()
	if err != nil {
		return nil, err
	}
	r, err := rc.Reference(repo + "@" + desc.Digest.String())
	if err != nil {
		return nil, err
	}
	d, ok := r.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("layer %s of %s: not a digest reference", desc.Digest, repo)
	}
	return remote.Layer(d, rc.RemoteOptions(ctx)...)
}

// engine opens the snapshotter and the container runtime under --root,
// sweeping what crashed kiln processes left there.
func (a *app) engine(ctx context.Context) (engine.Snapshotter, *container.Runtime, error) {
	abs, err := filepath.Abs(a.root)
	if err != nil {
		return nil, nil, err
	}
	a.root = abs
	d, err := snapshot.ParseDriver(a.snapshotter)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(a.root, "snapshots")
	swept, err := snapshot.Sweep(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	if len(swept) > 0 {
		// A crashed kiln that a.store did not see (it crashed since, or
		// this command opens no store first): its layer directories are
		// checked again on their next use, as a.store does.
		s, err := a.store(ctx)
		if err != nil {
			return nil, nil, err
		}
		if err := s.DistrustLayerDirs(); err != nil {
			return nil, nil, err
		}
	}
	sn, choice, err := snapshot.New(ctx, dir, d)
	if err != nil {
		return nil, nil, err
	}
	if choice.Reason != "" {
		fmt.Fprintf(a.stderr, "kiln: using the copy snapshotter: %s\n", choice.Reason)
	}
	rtOpts := []container.Option{container.WithCgroupParent(cgroupParent(a.root))}
	if exe, err := os.Executable(); err == nil {
		if init := container.Companion(exe); init != "" {
			rtOpts = append(rtOpts, container.WithInit(init))
		}
	}
	if a.userns != nil {
		rtOpts = append(rtOpts, container.WithUserNS(a.userns))
	}
	if rootless.Active() {
		// No cgroup of kiln's own outside the user namespace.
		fmt.Fprintln(a.stderr, "kiln: rootless: containers run without resource limits (no delegated cgroup); --memory, --cpus and --pids fail")
		rtOpts = append(rtOpts, container.WithoutCgroups())
	}
	rt, err := container.New(ctx, filepath.Join(a.root, "containers"), rtOpts...)
	if err != nil {
		return nil, nil, err
	}
	return sn, rt, nil
}

// maxStack is how many layer directories an overlay stacks before the
// bottom ones are merged: fewer where the kernel takes them in one page
// of mount options only (before Linux 6.8).
func maxStack() int {
	if container.OverlayLayersUnlimited() {
		return store.MaxStack
	}
	return store.LegacyMaxStack
}
