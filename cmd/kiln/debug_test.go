package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// debugManifest has a run step per line, from line 3.
const debugManifest = `from: busybox
steps:
  - run: echo hello > /greeting && echo bye > /gone
  - run: echo one > /one && rm /gone && echo hello again > /greeting
  - run: echo third step ran
`

// TestBuildDebugScript drives the prompt of kiln build --debug through a
// pipe, as a script would.
func TestBuildDebugScript(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": debugManifest})
	script := strings.Join([]string{
		"b 4", "breakpoints", "c", // entry (line 3) → line 4
		"env", "cat /greeting", "diff", "l",
		"n", // run line 4, stop before line 5
		"diff", "cat /greeting", "ls /", "cache",
		"nonsense",
		"q",
	}, "\n") + "\n"
	r := kiln(t, root, strings.NewReader(script), "build", "--debug", "-f", filepath.Join(dir, "app.yml"), dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code == 0 {
		t.Errorf("quit: exit 0, want a failed build")
	}
	for _, want := range []string{
		"app.yml:3 (on entry)",
		"app.yml:4 (at breakpoint 4)",
		"PATH=",
		"(kiln) hello\n",
		"A /greeting (6 B)",
		"A /gone (4 B)",
		"=>*   4    - run: echo one",
		"app.yml:5 (after next)",
		"A /one (4 B)",
		"M /greeting (12 B)",
		"D /gone",
		"hello again",
		"       4 one\n",
		"cache key ",
		`unknown command "nonsense"`,
		"aborted from the debugger",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the debugger did not print %q", want)
		}
	}
	if strings.Contains(r.stderr, "[main/2] running") {
		t.Errorf("quit before line 5, yet it ran")
	}
}

// failingManifest fails at line 4, after writing a file.
const failingManifest = `from: busybox
steps:
  - run: echo base > /base
  - run: echo partial > /partial && echo oops && exit 3
  - run: test "$(cat /fixed)" = fixed && test -f /base
`

// TestBuildDebugFailure stops on a failing step, retries it, then edits
// its command, and the build completes with the edited command.
func TestBuildDebugFailure(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": failingManifest})
	script := strings.Join([]string{
		"c",                                         // entry → the failure at line 4
		"diff", "cat /partial", "log -n 1", "retry", // fails again
		"cat /fixed", // not there
		"edit echo fixed > /fixed",
		"q", // not reached: the build completes
	}, "\n") + "\n"
	r := kiln(t, root, strings.NewReader(script), "build", "--debug", "-f", filepath.Join(dir, "app.yml"), dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d after edit, want 0", r.code)
	}
	for _, want := range []string{
		"step failed at " + filepath.Join(dir, "app.yml") + ":4",
		"exit code 3",
		"    oops\n",
		"A /partial (8 B)",
		"(kiln) partial\n",
		"(kiln) oops\n",
		"cat: opening /fixed: no such file or directory",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the debugger did not print %q", want)
		}
	}
	if strings.Contains(r.stderr, "oops\n    oops") {
		t.Error("the retry's output was shown with the first run's")
	}
	if n := strings.Count(r.stderr, "exit code 3"); n != 2 {
		t.Errorf("the step failed %d times, want 2 (the run and the retry)", n)
	}
	if !strings.HasPrefix(r.stdout, "sha256:") {
		t.Errorf("stdout %q, want the digest", r.stdout)
	}
}

// TestBuildDebugOnFailNoTTY: without a terminal, --debug-on-fail prints
// the failed step's output and changes, and keeps the changes.
func TestBuildDebugOnFailNoTTY(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": failingManifest})
	r := kiln(t, root, nil, "build", "--debug-on-fail", "-f", filepath.Join(dir, "app.yml"), dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code == 0 {
		t.Fatal("a failing build exited 0")
	}
	for _, want := range []string{"exit code 3", "    oops\n", "A /partial (8 B)", "kept the failed step's changes as "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("kiln did not print %q", want)
		}
	}
	if strings.Contains(r.stderr, "(kiln) ") {
		t.Error("a prompt was shown without a terminal")
	}
	kept, err := filepath.Glob(filepath.Join(root, "debug", "*.tar"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept %v (%v), want one tar", kept, err)
	}
	b, err := os.ReadFile(kept[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "partial\n") || !strings.Contains(r.stderr, kept[0]) {
		t.Errorf("the kept tar %s does not hold /partial, or was not named", kept[0])
	}
}

// TestBuildDebugSkip: --break on a line, skip it, and the image lacks
// its layer.
func TestBuildDebugSkip(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": `from: busybox
steps:
  - run: echo a > /a
  - run: echo b > /b
  - run: ls /
`})
	r := kiln(t, root, strings.NewReader("skip\n"), "build", "--break", "4", "-f", filepath.Join(dir, "app.yml"), dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	if strings.Contains(r.stderr, "on entry") {
		t.Error("--break alone stopped on entry")
	}
	if !strings.Contains(r.stderr, "app.yml:4 (at breakpoint 4)") || !strings.Contains(r.stderr, "skipping") {
		t.Error("did not stop at line 4, or did not say it skipped")
	}
	if strings.Contains(r.stderr, "[main/1] running") {
		t.Error("the skipped step ran")
	}
}

// TestBuildDebugShellTTY opens the debugger's shell on a real terminal:
// what the shell sees is the step's filesystem, and what it writes is
// thrown away.
func TestBuildDebugShellTTY(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": debugManifest})
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// expect waits for the n-th appearance of s, then types line.
	expect := func(s string, n int, line string) {
		t.Helper()
		deadline := time.Now().Add(commandTimeout)
		for {
			mu.Lock()
			got := strings.Count(strings.ReplaceAll(out.String(), "\r", ""), s)
			mu.Unlock()
			if got >= n {
				break
			}
			if time.Now().After(deadline) {
				mu.Lock()
				t.Fatalf("waited for %q (#%d) in:\n%s", s, n, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := ptmx.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*commandTimeout)
	defer cancel()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--root", root, "build", "--debug", "-f", filepath.Join(dir, "app.yml"), dir}, tty, tty, tty)
	}()
	expect("(kiln) ", 1, "n")
	expect("(kiln) ", 2, "shell")
	expect("# ", 1, "ls /; touch /from-shell")
	expect("# ", 2, "exit")
	expect("(kiln) ", 3, "ls /")
	expect("(kiln) ", 4, "q")
	var code int
	select {
	case code = <-done:
	case <-time.After(commandTimeout):
		t.Fatal("kiln did not end after q")
	}
	tty.Close()
	_, _ = ptmx.Write([]byte("\n")) // ends the read kiln's input still has pending
	mu.Lock()
	got := strings.ReplaceAll(out.String(), "\r", "")
	mu.Unlock()
	t.Logf("terminal:\n%s", got)
	if code == 0 {
		t.Error("quit: exit 0")
	}
	shell, after, _ := strings.Cut(got, "touch /from-shell")
	if !strings.Contains(shell, "greeting") {
		t.Error("the shell did not see the step's /greeting")
	}
	if !strings.Contains(after, "greeting") || strings.Contains(after, "from-shell") {
		t.Error("after the shell, ls / does not show /greeting, or shows what the shell wrote")
	}
}

// TestBuildDebugCachedBreak: a breakpoint stops a step the cache holds,
// whose filesystem can then be read without running anything.
func TestBuildDebugCachedBreak(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": debugManifest})
	mustKiln(t, root, "build", "-f", filepath.Join(dir, "app.yml"), dir)
	r := kiln(t, root, strings.NewReader("cat /gone\nc\n"), "build", "--break", "main/1", "-f", filepath.Join(dir, "app.yml"), dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{"app.yml:4 (at breakpoint main/1)", "(kiln) bye\n", "[main/1] cached"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("kiln did not print %q", want)
		}
	}
	if strings.Contains(r.stderr, "running") {
		t.Error("a step ran in a cached rebuild")
	}
}
