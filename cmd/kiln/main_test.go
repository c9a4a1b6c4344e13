package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/container"
	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/engine/snapshot"
	"github.com/kiln-build/kiln/image/registry"
)

// TestMain lets the test binary act as a container's init and exec
// helper: kiln run re-executes /proc/self/exe, which here is this binary.
func TestMain(m *testing.M) {
	if container.Main() {
		return
	}
	// The crash test runs kiln as a process of its own, to kill it.
	if os.Getenv("KILN_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(runOffline(m))
}

// offlineConf sends Docker Hub's names to a port that refuses connections.
const offlineConf = `[[registry]]
prefix = "docker.io"
location = "127.0.0.1:1"
`

// runOffline runs the tests with a registries.conf (see offlineConf) that
// keeps every short name off the internet, unless a test sets
// $KILN_REGISTRIES_CONF itself.
func runOffline(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kiln-test-registries-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, []byte(offlineConf), 0o644); err != nil {
		panic(err)
	}
	os.Setenv(registry.ConfEnv, conf)
	return m.Run()
}

// commandTimeout bounds one kiln command, so that a hung container fails
// its test instead of the whole run.
const commandTimeout = 15 * time.Second

// result is what one kiln command line gave.
type result struct {
	code           int
	stdout, stderr string
}

// kiln runs the kiln command line args with --root root in this process,
// as main does, with stdin (nil for an empty one).
func kiln(t *testing.T, root string, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"--root", root}, args...), stdin, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustKiln is kiln for commands that must succeed.
func mustKiln(t *testing.T, root string, args ...string) result {
	t.Helper()
	r := kiln(t, root, nil, args...)
	if r.code != 0 {
		t.Fatalf("kiln %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// newRoot returns a fresh kiln root for a test and, when the test ends,
// checks that kiln left no mount that mentions it and no container or
// snapshot directory in it.
func newRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	t.Cleanup(func() { checkClean(t, root) })
	return root
}

func checkClean(t *testing.T, root string) {
	t.Helper()
	// The root's cgroup parents are empty once its containers are gone.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgroupParent(root))
	unified, _ := filepath.Glob("/sys/fs/cgroup/" + cgroupParent(root))
	for _, p := range append(parents, unified...) {
		if err := os.Remove(p); err != nil {
			t.Errorf("cgroup parent of the root: %v", err)
		}
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, root) {
			t.Errorf("mount left behind under %s: %s", root, l)
		}
	}
	for _, p := range leftInRoot(root) {
		t.Errorf("left behind: %s", filepath.Join(root, p))
	}
}

// leftInRoot lists the containers and snapshots a kiln root holds (paths
// relative to it): after a build ends, however it ends, there are none.
func leftInRoot(root string) []string {
	var left []string
	for _, sub := range []string{"containers", "snapshots"} {
		ents, _ := os.ReadDir(filepath.Join(root, sub))
		for _, e := range ents {
			if sub == "snapshots" && e.Name() == snapshot.ProbeRecord {
				continue // what the root remembers of its file system, not a snapshot
			}
			left = append(left, filepath.Join(sub, e.Name()))
		}
	}
	return left
}

// importBusybox imports a fresh busybox root filesystem into root as
// busybox:latest with cmd /bin/sh and returns its digest.
func importBusybox(t *testing.T, root string) string {
	t.Helper()
	return importDigest(t, root, enginetest.Busybox(t))
}

// importDigest imports dir into root as busybox and returns the digest
// kiln printed.
func importDigest(t *testing.T, root, dir string) string {
	t.Helper()
	r := mustKiln(t, root, "import", dir, "-t", "busybox", "--cmd", "/bin/sh")
	d := strings.TrimSuffix(r.stdout, "\n")
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 || strings.Contains(d, "\n") {
		t.Fatalf("kiln import printed %q, want one sha256: digest", r.stdout)
	}
	return d
}
