package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ttyBuild runs kiln build with its stderr on a pseudo-terminal of 120
// columns (stdout a pipe), as a process of its own, and returns the
// terminal's output with mpb's cursor movements stripped, and stdout.
func ttyBuild(t *testing.T, root string, env []string, args ...string) (screen, stdout string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], append([]string{"--root", root, "build"}, args...)...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CI=") && !strings.HasPrefix(e, "NO_COLOR=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(append(cmd.Env, "KILN_TEST_MAIN=1"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 2}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screenBuf bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := io.Copy(&screenBuf, ptmx)
		var pe *os.PathError
		if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, syscall.EIO)) {
			t.Errorf("reading the terminal: %v", err)
		}
	})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		err = <-done
	}
	wg.Wait()
	screen = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`).ReplaceAllString(screenBuf.String(), "")
	screen = strings.ReplaceAll(screen, "\r\n", "\n")
	if err != nil {
		t.Fatalf("kiln build on a terminal: %v\n%s", err, screen)
	}
	return screen, out.String()
}

// TestBuildOnTerminal drives kiln build through a pseudo-terminal: the
// live view shows the running step with a spinner, its time and its
// last output lines, and ends with the summary; with CI=true the same
// build prints plain lines.
func TestBuildOnTerminal(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": `from: busybox
steps:
  - run: echo first > /first
  - run: for i in 1 2 3 4 5; do echo line$i; sleep 0.4; done
`})
	mustKiln(t, root, "build", "--progress", "plain", "--no-cache-filter", "main/1", dir) // main/0 cached from now on

	screen, stdout := ttyBuild(t, root, nil, "--no-cache-filter", "main/1", dir)
	digest := strings.TrimSpace(stdout)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) {
		t.Fatalf("stdout %q, want the digest", stdout)
	}
	for _, want := range []string{
		`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \[main/1\] run: for i in 1 2 3 4 5; do echo line\$i; sleep 0\.4; done +[1-9]\d*\.\ds\n`, // running, with its time
		`    │ line\d\n`, // its output under it
		`✔ \[main/0\] run: echo first > /first +CACHED\n`, // a cached node, marked
		`✔ \[main/1\] run: for i in .* +\d\.\ds\n`,        // done, with its time
	} {
		if !regexp.MustCompile(want).MatchString(screen) {
			t.Errorf("the terminal did not show %q:\n%s", want, screen)
		}
	}
	summary := regexp.MustCompile(`✔ built ` + digest + ` in [0-9.]+m?s: 1 step ran, 2 cached\n$`)
	if !summary.MatchString(screen) {
		t.Errorf("the terminal did not end with the summary naming %s:\n%s", digest, screen)
	}
	if strings.Contains(screen, "[main/1] running:") {
		t.Errorf("the live view printed plain lines:\n%s", screen)
	}

	// CI=true: plain lines, even on a terminal.
	screen, _ = ttyBuild(t, root, []string{"CI=true"}, "--no-cache-filter", "main/1", dir)
	for _, want := range []string{"[main/1] running: run: for i in", "[main/1] | line5\n", "[main/1] done: run: for i in", "built sha256:"} {
		if !strings.Contains(screen, want) {
			t.Errorf("with CI=true the terminal did not show %q:\n%s", want, screen)
		}
	}
	if strings.ContainsAny(screen, "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✔") {
		t.Errorf("with CI=true the terminal showed the live view:\n%s", screen)
	}
}
