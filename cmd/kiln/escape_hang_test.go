package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// child is kiln running as a process of its own (this test binary with
// KILN_TEST_MAIN=1), so that a test can signal it and bound how long it
// waits for it: a kiln that hangs fails the test instead of hanging it.
type child struct {
	cmd  *exec.Cmd
	out  *lockedBuffer // stdout and stderr
	done chan struct{}
	err  error
}

// lockedBuffer is a bytes.Buffer written by a process and read by a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startKiln starts kiln --root root args as a child process. Whatever
// happens, the child is killed (by its PID, never by name) when the test
// ends.
func startKiln(t *testing.T, root string, args ...string) *child {
	t.Helper()
	c := &child{out: &lockedBuffer{}, done: make(chan struct{})}
	c.cmd = kilnCommand(t, root, args...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// kill ends the child with SIGKILL and reaps it.
func (c *child) kill() {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	}
}

// wait waits up to d for the child to exit and returns its exit status;
// past d it kills the child and fails the test.
func (c *child) wait(t *testing.T, d time.Duration, what string) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		c.kill()
		t.Fatalf("%s: kiln still ran after %v (killed); output:\n%s", what, d, c.out.String())
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatalf("%s: %v", what, c.err)
	}
	return 0
}

// waitOutput waits up to d for the child's output to contain s.
func (c *child) waitOutput(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(c.out.String(), s) {
		select {
		case <-c.done:
			t.Fatalf("kiln exited before printing %q; output:\n%s", s, c.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			t.Fatalf("kiln did not print %q in %v; output:\n%s", s, d, c.out.String())
		}
	}
}

// fifoImage returns a kiln root holding busybox:latest whose file (a path
// in the image, e.g. etc/passwd) is a FIFO that nobody ever writes.
func fifoImage(t *testing.T, file string) string {
	t.Helper()
	enginetest.RequireRoot(t)
	root := newRoot(t)
	rootfs := enginetest.Busybox(t)
	p := filepath.Join(rootfs, file)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	importDigest(t, root, rootfs)
	return root
}

// TestEscapeSpecialFileHang gives kiln an image whose /etc/passwd or
// /etc/group is a FIFO, then a COPY --chown by name: kiln reads those
// files on the host to find the owner, and must refuse the FIFO with an
// error naming it, never wait on it; neither SIGTERM nor --timeout may be
// outlasted by such a wait, nor by a wait on another build's step.
func TestEscapeSpecialFileHang(t *testing.T) {
	for _, tc := range []struct {
		name, file, chown string
	}{
		{"passwd", "etc/passwd", "someuser"},
		{"group", "etc/group", "0:somegroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fifoImage(t, tc.file)
			dir := writeContext(t, map[string]string{
				"Dockerfile": "FROM busybox\nCOPY --chown=" + tc.chown + " f /f\n",
				"f":          "data\n",
			})
			k := startKiln(t, root, "build", "--progress", "plain", dir)
			code := k.wait(t, 10*time.Second, "build over a FIFO /"+tc.file)
			out := k.out.String()
			if code == 0 {
				t.Fatalf("the build succeeded; output:\n%s", out)
			}
			if !strings.Contains(out, "/"+tc.file) || !strings.Contains(out, "is a named pipe; kiln reads only regular files") {
				t.Errorf("the error does not say /%s is refused as a named pipe:\n%s", tc.file, out)
			}
		})
	}

	// SIGTERM while kiln is at the step that waited on the FIFO: kiln
	// ends promptly, as interrupted (130) or having refused the file, and
	// leaves no mount, container or process.
	t.Run("sigterm", func(t *testing.T) {
		root := fifoImage(t, "etc/passwd")
		dir := writeContext(t, map[string]string{
			"Dockerfile": "FROM busybox\nCOPY --chown=someuser f /f\n",
			"f":          "data\n",
		})
		k := startKiln(t, root, "build", "--progress", "plain", dir)
		// Once the step runs (or kiln has already refused the FIFO).
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(k.out.String(), "running: COPY") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		code := k.wait(t, 5*time.Second, "SIGTERM at a COPY --chown over a FIFO /etc/passwd")
		out := k.out.String()
		if code != 130 && !strings.Contains(out, "/etc/passwd") {
			t.Errorf("kiln ended with status %d, want 130 or an error naming /etc/passwd:\n%s", code, out)
		}
		t.Logf("ended %v after SIGTERM with status %d", time.Since(start), code)
		if left := processesUnder(root); len(left) > 0 {
			t.Errorf("processes still use the root: %v", left)
		}
		// newRoot's cleanup checks mounts, containers and snapshots.
	})

	// --timeout ends a build that waits on the lock of a step another
	// kiln is running (and SIGTERM ends that other kiln, as 130).
	t.Run("timeout-lock-wait", func(t *testing.T) {
		root := buildRoot(t)
		marker := fmt.Sprintf("40.%d%d", os.Getpid()%1000, time.Now().UnixNano()%1000)
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN sleep " + marker + "\n"})
		a := startKiln(t, root, "build", "--progress", "plain", dir)
		deadline := time.Now().Add(10 * time.Second)
		for len(sleeping(marker)) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if len(sleeping(marker)) == 0 {
			t.Fatalf("the first build never ran its step; output:\n%s", a.out.String())
		}
		start := time.Now()
		b := startKiln(t, root, "build", "--progress", "plain", "--timeout", "2s", dir)
		code := b.wait(t, 10*time.Second, "--timeout 2s while waiting on another build's step")
		took := time.Since(start)
		if code == 0 {
			t.Errorf("the waiting build succeeded; output:\n%s", b.out.String())
		}
		if !strings.Contains(b.out.String(), "timeout") {
			t.Errorf("the waiting build's error does not name its timeout:\n%s", b.out.String())
		}
		t.Logf("the waiting build ended after %v with status %d", took, code)

		// SIGTERM ends a build waiting on that lock too, as interrupted.
		c := startKiln(t, root, "build", "--progress", "plain", dir)
		c.waitOutput(t, "cached: from: busybox", 10*time.Second)
		time.Sleep(300 * time.Millisecond)
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		if code := c.wait(t, 5*time.Second, "SIGTERM while waiting on another build's step"); code != 130 {
			t.Errorf("the waiting build after SIGTERM: status %d, want 130; output:\n%s", code, c.out.String())
		}

		// Two SIGTERMs, as an impatient user: the first build still
		// stops and cleans up.
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(10 * time.Millisecond)
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		if code := a.wait(t, 5*time.Second, "SIGTERM during a step"); code != 130 {
			t.Errorf("the first build after SIGTERM: status %d, want 130; output:\n%s", code, a.out.String())
		}
		if left := sleeping(marker); len(left) > 0 {
			t.Errorf("the step's processes outlived kiln: %v", left)
		}
		if left := processesUnder(root); len(left) > 0 {
			t.Errorf("processes still use the root: %v", left)
		}
	})
}
