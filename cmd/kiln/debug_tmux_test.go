package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// tmuxKiln is kiln running in a tmux window of 200×50, with the default
// progress view, as a user at a terminal runs it: a test types into it
// with send-keys and reads the screen back with capture-pane.
type tmuxKiln struct {
	t      *testing.T
	sock   string // the tmux server's socket, of this test only
	status string // where the shell writes kiln's exit status
}

// startTmux runs kiln --root root args in a new tmux server's window.
func startTmux(t *testing.T, root string, args ...string) *tmuxKiln {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed (apt-get install tmux): %v", err)
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := &tmuxKiln{t: t, sock: filepath.Join(dir, "tmux.sock"), status: filepath.Join(dir, "status")}
	line := []string{"env", "-u", "CI", "-u", "NO_COLOR", "KILN_TEST_MAIN=1", shellQuote(bin), "--root", shellQuote(root)}
	for _, a := range args {
		line = append(line, shellQuote(a))
	}
	// The window stays after kiln ends, for the last capture.
	cmd := strings.Join(line, " ") + "; echo $? > " + shellQuote(k.status) + "; exec sleep 600"
	// tmux moves a screen that is erased from its top left corner into
	// the scrollback, as no terminal does: the scrollback would keep
	// frames of the live view that the terminal shows erased.
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g scroll-on-clear off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k.tmux("-f", conf, "new-session", "-d", "-s", "kiln", "-x", "200", "-y", "50", cmd)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", k.sock, "kill-server").Run() })
	return k
}

// tmux runs a tmux command on the test's server.
func (k *tmuxKiln) tmux(args ...string) string {
	k.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", k.sock}, args...)...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen returns the lines the window shows now, right-trimmed; with
// all, the scrollback above them too.
func (k *tmuxKiln) screen(all bool) []string {
	k.t.Helper()
	args := []string{"capture-pane", "-p", "-J", "-t", "kiln"}
	if all {
		args = append(args, "-S", "-")
	}
	lines := strings.Split(k.tmux(args...), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return lines
}

// lastLine is the last line of the window that is not blank.
func lastLine(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] != "" {
			return lines[i]
		}
	}
	return ""
}

// waitFor waits until ok holds of the whole transcript, or fails saying
// what it waited for.
func (k *tmuxKiln) waitFor(what string, ok func(all, visible []string) bool) {
	k.t.Helper()
	deadline := time.Now().Add(commandTimeout)
	for {
		all, visible := k.screen(true), k.screen(false)
		if ok(all, visible) {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("waited for %s; the window shows:\n%s", what, strings.Join(visible, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPrompt waits until the n-th (kiln) prompt is the last line of the
// window, waiting for a command.
func (k *tmuxKiln) waitPrompt(n int) {
	k.t.Helper()
	k.waitFor(fmt.Sprintf("(kiln) prompt #%d on the last line", n), func(all, visible []string) bool {
		c := 0
		for _, l := range all {
			if strings.HasPrefix(l, "(kiln)") {
				c++
			}
		}
		return c >= n && lastLine(visible) == "(kiln)"
	})
}

// waitLine waits until a line of the transcript is exactly line.
func (k *tmuxKiln) waitLine(line string) {
	k.t.Helper()
	k.waitFor("the line "+line, func(all, _ []string) bool {
		for _, l := range all {
			if l == line {
				return true
			}
		}
		return false
	})
}

// typeLine types line and Enter.
func (k *tmuxKiln) typeLine(line string) {
	k.t.Helper()
	k.tmux("send-keys", "-t", "kiln", "-l", line)
	k.tmux("send-keys", "-t", "kiln", "Enter")
}

// command types cmd at the prompt and checks it is echoed on the
// prompt's own line: nothing was drawn between the prompt and it.
func (k *tmuxKiln) command(cmd string) {
	k.t.Helper()
	k.typeLine(cmd)
	k.waitLine("(kiln) " + cmd)
}

// still checks that the window does not change while kiln waits at a
// prompt: the live view does not draw, the stopped step's timer does
// not run.
func (k *tmuxKiln) still() []string {
	k.t.Helper()
	before := strings.Join(k.screen(false), "\n")
	time.Sleep(700 * time.Millisecond)
	after := k.screen(false)
	if got := strings.Join(after, "\n"); got != before {
		k.t.Errorf("the window changed while kiln waited at the prompt:\nbefore:\n%s\nafter:\n%s", before, got)
	}
	for _, l := range after {
		if strings.Contains(l, "checking-cache") {
			k.t.Errorf("at the prompt, a step is shown checking the cache: %q", l)
		}
	}
	return after
}

// stoppedShown checks, at a prompt, that the window is still and shows
// node as stopped, and why.
func (k *tmuxKiln) stoppedShown(node, why string) {
	k.t.Helper()
	screen := k.still()
	for _, l := range screen {
		if strings.Contains(l, node) && strings.Contains(l, "stopped "+why) {
			return
		}
	}
	k.t.Errorf("the window does not show %s stopped %s:\n%s", node, why, strings.Join(screen, "\n"))
}

// waitDrawing waits until the live view draws node with a spinner: it
// draws again once the debugger lets the build go on.
func (k *tmuxKiln) waitDrawing(node string) {
	k.t.Helper()
	k.waitFor("the live view to draw "+node+" working", func(_, visible []string) bool {
		for _, l := range visible {
			if strings.Contains(l, node) && strings.ContainsFunc(l, isSpinner) {
				return true
			}
		}
		return false
	})
}

// noFrameLeft checks that every frame of the live view was erased from
// the transcript: what stays is the lines of the steps that ended, the
// debugger's, the shell's.
func (k *tmuxKiln) noFrameLeft(all []string) {
	k.t.Helper()
	for _, l := range all {
		if strings.ContainsFunc(l, isSpinner) {
			k.t.Errorf("a frame of the live view stayed on the terminal: %q", l)
		}
	}
}

// exitStatus waits for kiln to end and returns its exit status.
func (k *tmuxKiln) exitStatus() int {
	k.t.Helper()
	k.waitFor("kiln to end", func(_, _ []string) bool {
		_, err := os.Stat(k.status)
		return err == nil
	})
	time.Sleep(100 * time.Millisecond) // the shell writes it after creating it
	b, err := os.ReadFile(k.status)
	if err != nil {
		k.t.Fatal(err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		k.t.Fatalf("kiln's exit status: %v", err)
	}
	return code
}

// TestBuildDebugTmux drives kiln build --debug in tmux, with the default
// progress view (the live one, as the window is a terminal): on entry,
// break on a line, continue to it, next, diff, a shell whose typed
// command's output reads back intact, exit, commit (the step runs, the
// shell's file goes on top), continue, exit 0. At every prompt the
// prompt is the last line of the window, the typed command sits on the
// prompt's line, and the window stays still: the live view does not draw
// over the debugger, and shows the stopped step as stopped.
func TestBuildDebugTmux(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": `from: busybox
steps:
  - run: echo one > /one
  - run: echo two > /two && sleep 1 && echo two-done
  - run: echo made > /made
  - run: test -f /made && test -f /extra && echo all-there
`})
	k := startTmux(t, root, "build", "--debug", "-t", "tmuxed", "-f", filepath.Join(dir, "app.yml"), dir)

	k.waitPrompt(1)
	k.still()
	k.command("break 4")
	k.waitPrompt(2)
	k.command("continue")
	k.waitPrompt(3) // at breakpoint 4
	k.stoppedShown("[main/1]", "at breakpoint 4")
	k.command("next")
	k.waitDrawing("[main/1]") // it sleeps 1s
	k.waitPrompt(4)           // after next, before line 5
	k.command("diff")
	k.waitLine("  A /two (4 B)")
	k.waitPrompt(5)
	k.command("shell")
	k.waitFor("the shell's prompt", func(_, visible []string) bool { return strings.HasSuffix(lastLine(visible), "#") })
	k.typeLine("echo hello-$((6*7))")
	k.waitLine("hello-42")
	k.typeLine("echo extra > /extra; exit")
	k.waitPrompt(6)
	k.still()
	k.command("commit")
	k.waitPrompt(7) // after next, before line 6
	k.command("continue")
	if code := k.exitStatus(); code != 0 {
		t.Errorf("kiln exit status %d, want 0", code)
	}
	all := k.screen(true)
	t.Logf("the window, with its scrollback:\n%s", strings.Join(all, "\n"))
	for _, want := range []string{
		"app.yml:3 (on entry)", "app.yml:4 (at breakpoint 4)", "app.yml:5 (after next)", "app.yml:6 (after next)",
		`commit: "run: echo made > /made" runs, then the last shell's changes go on top of it`,
	} {
		if !strings.Contains(strings.Join(all, "\n"), want) {
			t.Errorf("the window did not show %q", want)
		}
	}
	k.noFrameLeft(all)
	if !strings.HasPrefix(lastLine(all), "sha256:") {
		t.Errorf("the last line is %q, want the image's digest", lastLine(all))
	}
	out := mustKiln(t, root, "run", "--network", "none", "tmuxed", "--", "cat", "/one", "/two", "/made", "/extra").stdout
	if out != "one\ntwo\nmade\nextra\n" {
		t.Errorf("the image holds %q, want one, two, made and extra", out)
	}
}

// isSpinner reports whether r is one of the live view's spinner frames
// (mpb's, braille patterns).
func isSpinner(r rune) bool { return r >= 0x2800 && r <= 0x28ff }

// TestBuildDebugOnFailTmux: kiln build --debug-on-fail in tmux, with the
// default progress view: the failed step's prompt is the last line of a
// still window, the step is shown stopped, not running; edit runs the
// step again with the view drawing it, and the build ends well.
func TestBuildDebugOnFailTmux(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": `from: busybox
steps:
  - run: echo start && sleep 1 && exit 3
`})
	k := startTmux(t, root, "build", "--debug-on-fail", "-f", filepath.Join(dir, "app.yml"), dir)
	k.waitPrompt(1)
	k.stoppedShown("[main/0]", "after it failed")
	k.command("edit sleep 1 && echo edited-$((6*7))")
	k.waitDrawing("[main/0]")
	if code := k.exitStatus(); code != 0 {
		t.Errorf("kiln exit status %d, want 0", code)
	}
	all := k.screen(true)
	t.Logf("the window, with its scrollback:\n%s", strings.Join(all, "\n"))
	k.noFrameLeft(all)
}

// TestBuildDebugServiceShellTmux: stopped at a test that runs beside a
// service (on entry: it is the first node to run), shell --service db opens a shell,
// on the terminal, in the service's running container: it sees the
// service's files, not the test's; exit, continue, and the test passes
// against the same service.
func TestBuildDebugServiceShellTmux(t *testing.T) {
	enginetest.RequireRoot(t)
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": `from: busybox
services:
  db:
    image: busybox
    command: mkdir -p /www && echo "in-the-db-$((6*7))" > /www/index.html && exec httpd -f -p 5432 -h /www
    ready: {port: 5432}
tests:
  - name: query
    services: [db]
    run: wget -qO- http://db:5432/ | grep in-the-db
`})
	k := startTmux(t, root, "build", "--debug", "-f", filepath.Join(dir, "app.yml"), dir)
	k.waitPrompt(1) // on entry: the test, the first node to run
	k.stoppedShown("[main/test/query]", "on entry")
	k.command("shell --service nope")
	k.waitFor("an error naming the test's services", func(all, _ []string) bool {
		return strings.Contains(strings.Join(all, "\n"), `runs beside no service "nope": its services are db`)
	})
	k.waitPrompt(2)
	k.command("shell --service db")
	k.waitFor("the service's shell prompt", func(_, visible []string) bool { return strings.HasSuffix(lastLine(visible), "#") })
	k.typeLine("cat /www/index.html; hostname")
	k.waitLine("in-the-db-42")
	k.waitLine("db")
	k.typeLine("exit")
	k.waitPrompt(3)
	k.command("continue")
	if code := k.exitStatus(); code != 0 {
		t.Errorf("kiln exit status %d, want 0", code)
	}
	all := k.screen(true)
	t.Logf("the window, with its scrollback:\n%s", strings.Join(all, "\n"))
	for _, p := range processesUnder(root) {
		if !strings.Contains(p, "tmux -S") { // the window's own, until cleanup
			t.Errorf("process left: %v", p)
		}
	}
}
