package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// kilnCommand returns kiln with --root root and args as a process of its
// own (this test binary with KILN_TEST_MAIN=1), so it can be signalled
// and run beside another.
func kilnCommand(t *testing.T, root string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], append([]string{"--root", root}, args...)...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// TestBuildInterrupt sends SIGINT to kiln build while a step sleeps: kiln
// stops promptly with status 130, leaving no mount, no process of the
// step and no cache record of it; the next build succeeds.
func TestBuildInterrupt(t *testing.T) {
	root := buildRoot(t)
	records := filepath.Join(root, "cache", "records")
	marker := fmt.Sprintf("30.%d%d", os.Getpid()%1000, time.Now().UnixNano()%1000)
	dir := writeContext(t, map[string]string{"kiln.yml": `---
vars:
  secs: 0
---
from: busybox
steps:
  - run: echo before > /before
  - run: sleep {{ secs }}
  - run: echo after > /after
`})

	cmd := kilnCommand(t, root, "build", "--progress", "json", "--set", "secs="+marker, dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the sleep runs, its container started.
	sc := bufio.NewScanner(stdout)
	running := false
	for !running && sc.Scan() {
		var e struct{ Node, State string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("--progress json printed %q: %v", sc.Text(), err)
		}
		running = e.Node == "main/1" && e.State == "running"
	}
	if !running {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the sleep step never ran; stderr:\n%s", stderr.String())
	}
	go func() { // drain, so kiln never blocks on a full pipe
		for sc.Scan() {
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for len(sleeping(marker)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(sleeping(marker)) == 0 {
		t.Fatal("no process runs the step's sleep")
	}
	before := countFiles(t, records)
	if before != 1 {
		t.Errorf("%d cache records before the interrupt, want 1 (the first step's)", before)
	}

	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("kiln build after SIGINT: %v, want exit status 130; stderr:\n%s", err, stderr.String())
	}
	if took > 3*time.Second {
		t.Errorf("kiln took %v to stop after SIGINT, want < 3 s", took)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the build was interrupted:\n%s", stderr.String())
	}
	if left := sleeping(marker); len(left) > 0 {
		t.Errorf("the step's processes outlived kiln: %v", left)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, root) {
			t.Errorf("mount left behind: %s", l)
		}
	}
	if after := countFiles(t, records); after != before {
		t.Errorf("%d cache records after the interrupt, %d before: the interrupted step left one", after, before)
	}

	// The next build succeeds, and reuses the first step.
	r := mustKiln(t, root, "build", "--progress", "json", dir)
	want := map[string]string{"main/base": "cached", "main/0": "cached", "main/1": "done", "main/2": "done"}
	if diff := cmp.Diff(want, parseJSONBuild(t, r.stdout).final); diff != "" {
		t.Errorf("the build after the interrupt, final states (-want +got):\n%s", diff)
	}
	// newRoot's cleanup checks containers and snapshots.
}

// TestBuildConcurrentProcesses runs two kiln processes building the same
// manifest on one root at once: both succeed with the same digest.
func TestBuildConcurrentProcesses(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"data.txt": "some data\n",
		"kiln.yml": `from: busybox
steps:
  - run: sleep 0.5 && echo one > /one
  - copy: {src: data.txt, dst: /data.txt}
  - run: cat /one /data.txt > /both
tests:
  - name: both
    run: grep -q data /both
`,
	})
	const n = 2
	var wg sync.WaitGroup
	outs := make([]string, n)
	errs := make([]error, n)
	stderrs := make([]strings.Builder, n)
	for i := range n {
		cmd := kilnCommand(t, root, "build", dir)
		cmd.Stderr = &stderrs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := cmd.Output()
			outs[i], errs[i] = string(b), err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("kiln build #%d: %v\nstderr:\n%s", i, errs[i], stderrs[i].String())
		}
	}
	if t.Failed() {
		return
	}
	d0, d1 := strings.TrimSpace(outs[0]), strings.TrimSpace(outs[1])
	if !strings.HasPrefix(d0, "sha256:") || d0 != d1 {
		t.Errorf("the two builds printed %q and %q, want the same digest", d0, d1)
	}
	// Each step ran once: one process ran it, the other found its record.
	ran := strings.Count(stderrs[0].String(), "] done: ") + strings.Count(stderrs[1].String(), "] done: ")
	if ran != 3 {
		t.Errorf("the steps ran %d times in all, want 3 (each once)\n%s\n%s", ran, stderrs[0].String(), stderrs[1].String())
	}
	if d := digestOf(t, mustKiln(t, root, "build", dir)); d != d0 {
		t.Errorf("a third build gave %s, want %s", d, d0)
	}
}
