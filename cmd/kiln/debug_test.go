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

// attachManifest fails at line 6, after writing a file, with an env and
// a workdir of its own.
const attachManifest = `from: busybox
env: {MODE: ci}
workdir: /app
steps:
  - run: echo base > /base
  - run: echo partial > partial && rm /base && echo oops && exit 3
`

// TestBuildDebugOnFailNoTTY: without a terminal, --debug-on-fail prints
// the failed step's output and changes, and keeps its filesystem under a
// name that kiln debug attach opens, with the step's env and workdir,
// after kiln cache prune and the sweep of a new kiln process.
func TestBuildDebugOnFailNoTTY(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": attachManifest})
	r := kiln(t, root, nil, "build", "--debug-on-fail", "-f", filepath.Join(dir, "app.yml"), dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code == 0 {
		t.Fatal("a failing build exited 0")
	}
	for _, want := range []string{"exit code 3", "    oops\n", "A /app/partial (8 B)", "D /base", "kept the failed step's filesystem as "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("kiln did not print %q", want)
		}
	}
	if strings.Contains(r.stderr, "(kiln) ") {
		t.Error("a prompt was shown without a terminal")
	}
	_, rest, _ := strings.Cut(r.stderr, "kept the failed step's filesystem as ")
	name, _, _ := strings.Cut(rest, ":")
	if !strings.HasPrefix(name, "main-1-") {
		t.Fatalf("kept as %q, want main-1-…", name)
	}
	// The hint names the test's root, which is not the default.
	if want := "kiln --root " + root + " debug attach " + name + " opens a shell"; !strings.Contains(r.stderr, want) {
		t.Errorf("kiln did not print %q", want)
	}

	ls := mustKiln(t, root, "debug", "ls").stdout
	if !strings.Contains(ls, name+"  ") || !strings.Contains(ls, "run: echo partial") || !strings.Contains(ls, "app.yml:6") {
		t.Errorf("kiln debug ls does not list %s with its step and line:\n%s", name, ls)
	}
	mustKiln(t, root, "cache", "prune", "--keep-storage", "0")
	got := mustKiln(t, root, "debug", "attach", name, "--", "sh", "-c", "echo $MODE; pwd; cat partial; test -e /base || echo no base").stdout
	if want := "ci\n/app\npartial\nno base\n"; got != want {
		t.Errorf("attach printed %q, want %q", got, want)
	}
	// A shell reads its commands from stdin without a terminal.
	if r := kiln(t, root, strings.NewReader("cat /app/partial\n"), "debug", "attach", name); r.code != 0 || r.stdout != "partial\n" {
		t.Errorf("attach with a script: exit %d, stdout %q", r.code, r.stdout)
	}
	mustKiln(t, root, "debug", "rm", name)
	if ls := mustKiln(t, root, "debug", "ls").stdout; strings.Contains(ls, name) {
		t.Errorf("kiln debug rm left %s:\n%s", name, ls)
	}
	if r := kiln(t, root, nil, "debug", "attach", name); r.code == 0 {
		t.Error("attach to a removed step succeeded")
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

// ptyKiln is kiln running in this process on a pseudo-terminal, for a
// test to type into as a user would.
type ptyKiln struct {
	t         *testing.T
	ptmx, tty *os.File
	mu        sync.Mutex
	out       bytes.Buffer
	done      chan int
	drained   chan struct{} // the terminal's output has all been read
	cancel    context.CancelFunc
}

// startPTY runs kiln --root root args on a new pseudo-terminal.
func startPTY(t *testing.T, root string, args ...string) *ptyKiln {
	t.Helper()
	p := newPTY(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*commandTimeout)
	p.cancel = cancel
	t.Cleanup(cancel)
	go func() {
		p.done <- run(ctx, append([]string{"--root", root}, args...), p.tty, p.tty, p.tty)
	}()
	return p
}

// newPTY opens a pseudo-terminal whose output is recorded, for kiln to
// be started on.
func newPTY(t *testing.T) *ptyKiln {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyKiln{t: t, ptmx: ptmx, tty: tty, done: make(chan int, 1), drained: make(chan struct{})}
	t.Cleanup(func() { ptmx.Close() })
	go func() {
		defer close(p.drained)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

// screen returns what the terminal showed so far, without carriage
// returns.
func (p *ptyKiln) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.ReplaceAll(p.out.String(), "\r", "")
}

// expect waits for the n-th appearance of s, then types line.
func (p *ptyKiln) expect(s string, n int, line string) {
	p.t.Helper()
	deadline := time.Now().Add(commandTimeout)
	for strings.Count(p.screen(), s) < n {
		if time.Now().After(deadline) {
			p.t.Fatalf("waited for %q (#%d) in:\n%s", s, n, p.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := p.ptmx.Write([]byte(line + "\n")); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for kiln to end and returns its exit status and what the
// terminal showed.
func (p *ptyKiln) wait() (int, string) {
	p.t.Helper()
	var code int
	select {
	case code = <-p.done:
	case <-time.After(2 * commandTimeout):
		p.cancel()
		p.t.Fatalf("kiln did not end:\n%s", p.screen())
	}
	_, _ = p.ptmx.Write([]byte("\n")) // ends the read kiln's input still has pending
	p.tty.Close()
	// Read what kiln wrote last: the master reads EIO once it is all read
	// and the terminal is closed.
	select {
	case <-p.drained:
	case <-time.After(2 * time.Second):
	}
	got := p.screen()
	p.t.Logf("terminal:\n%s", got)
	return code, got
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

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/kiln":   "/var/lib/kiln",
		"/tmp/a b":        "'/tmp/a b'",
		"/tmp/it's":       `'/tmp/it'\''s'`,
		"":                "''",
		"/x/$HOME;reboot": "'/x/$HOME;reboot'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
