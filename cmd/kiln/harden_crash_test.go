package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/image/store"
)

// Crash safety: kiln build is killed with SIGKILL at random points (during
// the base's unpacking, a step's run, its diff, commit, the tag), and the
// next build on the same root succeeds and leaves nothing behind. The
// store and cache are crash-safe by construction (temp files named by pid,
// fsync and rename, records after their blobs, a sweep at startup): this
// test checks that they are, on a real build.
//
// go test runs 10 iterations (skipped with -short); scripts/bench/crash.sh runs
// 100 (KILN_CRASH_ITERATIONS=100).

// crashManifest has several run and copy steps, and a test; its first
// step depends on nonce, so that every build runs every step.
const crashManifest = `---
vars:
  nonce: "0"
  marker: "0.01"
---
from: busybox
steps:
  - run: echo {{ nonce }} > /nonce && sleep {{ marker }}
  - copy: {src: data, dst: /data}
  - run: dd if=/dev/urandom of=/blob bs=64k count=16 2>/dev/null && sleep {{ marker }}
  - copy: {src: more.txt, dst: /etc/more.txt}
  - run: cat /nonce /data/a.txt /etc/more.txt > /all && rm /data/b.txt
  - run: mkdir -p /var/lib/app && for i in 1 2 3 4 5 6 7 8; do echo $i > /var/lib/app/$i; done
tests:
  - name: all
    run: grep -q more /all && test -f /blob
`

// crashIterations is how many times TestCrashRecovery kills a build:
// KILN_CRASH_ITERATIONS, default 10.
func crashIterations(t *testing.T) int {
	if s := os.Getenv("KILN_CRASH_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("KILN_CRASH_ITERATIONS=%q: want a positive number", s)
		}
		return n
	}
	return 10
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 10 builds: skipped with -short")
	}
	root := buildRoot(t)
	marker := fmt.Sprintf("0.01%d%d", os.Getpid()%1000, time.Now().UnixNano()%1000)
	dir := writeContext(t, map[string]string{
		"kiln.yml":   crashManifest,
		"data/a.txt": "a\n",
		"data/b.txt": "b\n",
		"more.txt":   "more\n",
	})
	build := func(nonce string) *result {
		r := mustKiln(t, root, "build", "--set", "nonce="+nonce, "--set", "marker="+marker, "-t", "crash:latest", dir)
		return &r
	}
	// How long an uncached build takes once the base is unpacked: the
	// range of the kill delays (plus the base's unpacking, the first time).
	start := time.Now()
	digestOf(t, *build("first"))
	t.Logf("the first build takes %v", time.Since(start))
	start = time.Now()
	if out, err := kilnCommand(t, root, "build", "--set", "nonce=second", "--set", "marker="+marker, "-t", "crash:latest", dir).CombinedOutput(); err != nil {
		t.Fatalf("kiln build: %v\n%s", err, out)
	}
	span := time.Since(start)
	t.Logf("an uncached build takes %v", span)

	n := crashIterations(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	killedWhile := map[string]int{}
	for i := range n {
		nonce := fmt.Sprintf("crash-%d", i)
		delay := time.Duration(rng.Int64N(int64(span)))
		if i%3 == 0 {
			// Drop the unpacked layers that have a blob (as a collection
			// of unused ones would): this build unpacks the base again,
			// and may die while at it. A step's layer kept as its
			// directory only (store.CommitLayerDir) is its only copy,
			// which a collection keeps while a record lists it.
			ents, err := os.ReadDir(filepath.Join(root, "layers"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if _, err := os.Stat(filepath.Join(root, "oci", "blobs", "sha256", e.Name())); err != nil {
					continue
				}
				if err := os.RemoveAll(filepath.Join(root, "layers", e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
		cmd := kilnCommand(t, root, "build", "--set", "nonce="+nonce, "--set", "marker="+marker, "-t", "crash:latest", dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if err == nil {
			killedWhile["after it finished"]++
		} else {
			killedWhile[lastStep(stderr.String())]++
		}
		pid := cmd.Process.Pid

		// The build that follows succeeds: the same one (it finds what
		// the killed one committed), then a new one.
		first := digestOf(t, *build(nonce))
		if again := digestOf(t, *build(nonce)); again != first {
			t.Errorf("iteration %d: a cached rebuild gave %s, the build after the crash %s", i, again, first)
		}
		checkAfterCrash(t, root, pid, marker)
		if t.Failed() {
			t.Fatalf("iteration %d (killed after %v) left the root unclean; stderr of the killed build:\n%s", i, delay, stderr.String())
		}
	}
	t.Logf("%d builds killed, each followed by a good build and a clean root; killed while: %v", n, killedWhile)
}

// lastStep returns what the last line of plain progress says the build
// was doing, as "main/2 running", for the log.
func lastStep(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	l := lines[len(lines)-1]
	node, rest, ok := strings.Cut(strings.TrimPrefix(l, "["), "] ")
	if !ok {
		return "starting"
	}
	state, _, _ := strings.Cut(rest, ":")
	return node + " " + state
}

// checkAfterCrash checks, after a good build that followed a killed one,
// that root holds no mount, no cgroup, no process of the killed build, no
// temp file, and only cache records whose blobs verify.
func checkAfterCrash(t *testing.T, root string, killed int, marker string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, root) {
			t.Errorf("mount left behind: %s", l)
		}
	}
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgroupParent(root))
	unified, _ := filepath.Glob("/sys/fs/cgroup/" + cgroupParent(root))
	for _, p := range append(parents, unified...) {
		ents, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() {
				t.Errorf("cgroup left behind: %s", filepath.Join(p, e.Name()))
			}
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", killed)); err == nil {
		t.Errorf("the killed kiln (pid %d) still exists", killed)
	}
	noneLeft(t, root, marker, 2*time.Second)
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("temp file left in the store: tmp/%s", e.Name())
	}
	tmps, _ := filepath.Glob(filepath.Join(root, "cache", "records", ".tmp-*"))
	for _, p := range tmps {
		t.Errorf("temp file left in the cache: %s", p)
	}
	for _, p := range leftInRoot(root) {
		t.Errorf("left behind: %s", p)
	}
	verifyCache(t, root)
}

// processesUnder lists the processes whose working directory or root is
// under root, or whose command line names it.
func processesUnder(root string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if filepath.Base(d) == strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(d + "/cmdline")
		cwd, _ := os.Readlink(d + "/cwd")
		rootfs, _ := os.Readlink(d + "/root")
		if strings.Contains(string(cmdline), root) || strings.HasPrefix(cwd, root) || strings.HasPrefix(rootfs, root) {
			found = append(found, filepath.Base(d)+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// noneLeft waits up to d for the processes running sleep with marker to
// die, then fails the test naming those that live on, and any process
// that uses root.
func noneLeft(t *testing.T, root, marker string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for len(sleeping(marker)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := sleeping(marker); len(left) > 0 {
		t.Errorf("processes of the killed build live on: %v", left)
	}
	if left := processesUnder(root); len(left) > 0 {
		t.Errorf("processes still use the root: %v", left)
	}
}

// verifyCache opens the store and cache of root (which sweeps them, so
// call it after checking for temp files) and verifies every record: its
// blob is there, with the record's digest and diffID.
func verifyCache(t *testing.T, root string) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Error("the cache has no records after a good build")
	}
	for _, k := range keys {
		if err := c.Verify(ctx, k); err != nil {
			t.Errorf("cache record %s does not verify: %v", k, err)
		}
	}
}
