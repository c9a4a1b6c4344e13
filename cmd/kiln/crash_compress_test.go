package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashRecoveryMidCompression kills kiln build with SIGKILL while the
// layer of its first step (128 MiB that do not compress) is compressed in
// the background, for the build's OCI output, and its second step already
// runs: no blob is left half written, no record names a missing blob, and
// the next build recovers and gives the same files.
func TestCrashRecoveryMidCompression(t *testing.T) {
	root := buildRoot(t)
	marker := fmt.Sprintf("0.02%d%d", os.Getpid()%1000, time.Now().UnixNano()%1000)
	manifest := `from: busybox
steps:
  - run: head -c 134217728 /dev/urandom > /big
  - run: echo started && sleep ` + marker + `
`
	dir := writeContext(t, map[string]string{"kiln.yml": manifest})
	cmd := kilnCommand(t, root, "build", "--progress", "plain", "-t", "crash:latest", "--output", "type=oci,dest="+filepath.Join(t.TempDir(), "oci"), dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	s := bufio.NewScanner(stderr)
	for s.Scan() {
		log.WriteString(s.Text() + "\n")
		if s.Text() == "[main/1] | started" {
			break
		}
	}
	// The second step runs: the first one's layer is committed (its
	// tar, a blob) and still being compressed into a file of tmp/.
	tmp, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var staged []string
	for _, e := range tmp {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			staged = append(staged, e.Name())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stderr) //nolint:errcheck // draining
	_ = cmd.Wait()
	if !strings.Contains(log.String(), "[main/1] | started") {
		t.Fatalf("the second step never ran:\n%s", log.String())
	}
	if len(staged) == 0 {
		t.Errorf("tmp/ held no file while the second step ran (%d entries): the first step's layer was not compressed in the background", len(tmp))
	}
	checkBlobs(t, root)

	kilnLong(t, root, "build", "-t", "crash:latest", dir)
	checkAfterCrash(t, root, cmd.Process.Pid, marker)
	if got := mustKiln(t, root, "run", "crash", "--", "sh", "-c", "wc -c < /big").stdout; got != "134217728\n" {
		t.Errorf("after the crash, the image's /big holds %q bytes", got)
	}
}

// checkBlobs checks that every blob of root's store hashes to its name.
func checkBlobs(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "oci", "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
			t.Errorf("blob %s holds bytes that hash to %s: written in part", e.Name(), got)
		}
	}
}

// TestFailedBuildLeavesNoCompression: a build that exports (here an OCI
// output) compresses each step's layer in the background as the step
// commits it. When a later step fails while the first one's layer (64 MiB
// that do not compress) is still being compressed, kiln cancels that
// compression and waits for its end before it returns: nothing of it is
// left in tmp/, nor written into the root after (the test's TempDir
// removal raced it).
func TestFailedBuildLeavesNoCompression(t *testing.T) {
	root := buildRoot(t)
	manifest := `from: busybox
steps:
  - run: head -c 67108864 /dev/urandom > /big
  - run: exit 3
`
	dir := writeContext(t, map[string]string{"kiln.yml": manifest})
	r := kiln(t, root, nil, "build", "--output", "type=oci,dest="+filepath.Join(t.TempDir(), "oci"), dir)
	if r.code == 0 {
		t.Fatalf("the build of a failing step succeeded:\n%s", r.stderr)
	}
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in tmp/ as kiln returned: %s", e.Name())
	}
}
