package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/cgroup"
	"github.com/kiln-build/kiln/engine/enginetest"
)

// killRun starts kiln run --name name busybox in root, with a container
// that sleeps, in a process of its own, and kills that kiln with SIGKILL
// once its container runs. It returns the sleep's argument, which names
// the container's processes (see sleeping).
func killRun(t *testing.T, root, name string) (marker string) {
	t.Helper()
	marker = fmt.Sprintf("%d.%d", 3000+os.Getpid()%1000, time.Now().UnixNano()%1000)
	cmd := exec.Command(os.Args[0], "--root", root, "run", "--name", name, "busybox", "--",
		"sh", "-c", "echo started; sleep "+marker+" & sleep "+marker)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("kiln run: %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return marker
}

// TestCrashedKilnIsSwept kills kiln with SIGKILL while its container
// runs: the container's processes die with it (PDEATHSIG, then the PID
// namespace), its mounts with its mount namespace, and the next kiln
// removes the cgroup, state and snapshot it left.
func TestCrashedKilnIsSwept(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox")
	marker := killRun(t, root, "crashed")

	cgroups, err := cgroup.NewManager(cgroup.WithParent(cgroupParent(root)))
	if err != nil {
		t.Fatal(err)
	}
	// What the crash left: its state, its snapshot and its cgroup...
	for _, p := range []string{filepath.Join(root, "containers", "crashed"), filepath.Join(root, "snapshots", "crashed")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("expected the crash to leave %s: %v", p, err)
		}
	}
	if _, err := cgroups.Open("crashed"); err != nil {
		t.Errorf("expected the crash to leave its cgroup: %v", err)
	}
	// ...but no process: they die with kiln.
	deadline := time.Now().Add(2 * time.Second)
	for len(sleeping(marker)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := sleeping(marker); len(left) > 0 {
		t.Errorf("container processes outlived kiln: %v", left)
	}

	// The next kiln sweeps the rest.
	if r := mustKiln(t, root, "run", "busybox", "--", "echo", "after"); r.stdout != "after\n" {
		t.Errorf("the run after the crash printed %q", r.stdout)
	}
	for _, p := range []string{filepath.Join(root, "containers", "crashed"), filepath.Join(root, "snapshots", "crashed")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was not swept", p)
		}
	}
	if _, err := cgroups.Open("crashed"); err == nil {
		t.Error("the crashed container's cgroup was not swept")
	}
}

// sleeping lists the live processes running sleep with marker.
func sleeping(marker string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil || !strings.Contains(string(b), "sleep\x00"+marker) {
			continue
		}
		if st, err := os.ReadFile(d + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		found = append(found, filepath.Base(d))
	}
	return found
}

// TestInterruptTearsDown sends kiln SIGINT (Ctrl-C) while its container
// runs: kiln kills the container and removes everything before it exits.
func TestInterruptTearsDown(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox")
	marker := fmt.Sprintf("%d.%d", 4000+os.Getpid()%1000, time.Now().UnixNano()%1000)
	cmd := exec.Command(os.Args[0], "--root", root, "run", "--name", "interrupted", "busybox", "--",
		"sh", "-c", "trap '' INT TERM; echo started; sleep "+marker+" & sleep "+marker)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("kiln run: %q, %v", line, err)
	}
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("kiln run after SIGINT: %v, want exit status 130; stderr %q", err, stderr.String())
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("kiln took %v to stop after SIGINT", took)
	}
	if !strings.Contains(stderr.String(), "cancelled") {
		t.Errorf("stderr %q does not say the container was cancelled", stderr.String())
	}
	if left := sleeping(marker); len(left) > 0 {
		t.Errorf("container processes outlived kiln: %v", left)
	}
	cgroups, err := cgroup.NewManager(cgroup.WithParent(cgroupParent(root)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cgroups.Open("interrupted"); err == nil {
		t.Error("the interrupted container's cgroup remains")
	}
	// newRoot's cleanup checks mounts, containers and snapshots.
}
