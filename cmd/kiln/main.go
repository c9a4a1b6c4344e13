// Command kiln is a daemonless, graph-driven container image builder.
//
// This file holds the entry point and the flags every command shares;
// each other file holds one command.
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
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/snapshot"
	"github.com/kiln-build/kiln/store"
	"github.com/kiln-build/kiln/toolbox"
)

func main() {
	// A container's init and exec helper are this binary, re-executed.
	if container.Main() {
		return
	}
	// What kiln inherited past stdio never reaches a container.
	if err := container.StdioOnly(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
		os.Exit(125)
	}
	// Run as /.kiln/bin/kiln in a build container: the helpers.
	if toolbox.InContainer() {
		os.Exit(runHelper(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

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
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
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
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.As(err, &interruptedError{}) || errors.Is(context.Cause(ctx), interruptedError{}) {
		// Whatever phase the signal ended, as a shell reports SIGINT.
		fmt.Fprintf(stderr, "kiln: %v\n", err)
		return 130
	}
	fmt.Fprintf(stderr, "kiln: %v\n", err)
	var se *container.StartError
	if errors.As(err, &se) && se.Code != 0 {
		return se.Code
	}
	return 125
}

// app holds the global flags and what the commands open from them.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	root           string
	snapshotter    string
	reg            registryFlags
	pulls          *basePulls // kiln build --pull: bases pulled again, once each
}

func defaultRoot() string {
	if r := os.Getenv("KILN_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/kiln"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kiln")
	}
	return filepath.Join(os.TempDir(), "kiln")
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
	)
	root.AddCommand(registryCommands(a)...)
	addRegistryFlags(root, a)
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
	return store.Open(ctx, a.root)
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
	if _, err := snapshot.Sweep(ctx, dir); err != nil {
		return nil, nil, err
	}
	sn, choice, err := snapshot.New(ctx, dir, d)
	if err != nil {
		return nil, nil, err
	}
	if choice.Reason != "" {
		fmt.Fprintf(a.stderr, "kiln: using the copy snapshotter: %s\n", choice.Reason)
	}
	rt, err := container.New(ctx, filepath.Join(a.root, "containers"), container.WithCgroupParent(cgroupParent(a.root)))
	if err != nil {
		return nil, nil, err
	}
	return sn, rt, nil
}
