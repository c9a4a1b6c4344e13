package main

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// branchesManifest has two stages that build in parallel: a's first step
// waits until b's first step (line 10) runs, so that when a stops at
// line 6, b's step is in its container for two seconds more. b's second
// step (line 11) has a breakpoint too.
const branchesManifest = `stages:
  a:
    from: busybox
    steps:
      - run: until nc 127.0.0.1 {{ port }}; do sleep 0.1; done
      - run: sleep 2 && echo a2 > /a2
  b:
    from: busybox
    steps:
      - run: nc -l -p {{ port }} -e true && sleep 2 && echo b1 > /b1
      - run: echo b2 > /b2
  final:
    from: busybox
    steps:
      - copy: {from: a, src: /a2, dst: /a2}
      - copy: {from: b, src: /b2, dst: /b2}
target: final
`

// TestBuildDebugParallelBranches stops one branch while another runs: the
// prompt names the running node, graph shows where the step sits; then
// continue lets the stopped branch end before the other one goes on,
// and continue --all lets both run at once.
func TestBuildDebugParallelBranches(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": branchesManifest})
	for _, tc := range []struct {
		name, cont string
		// waits: b's stop comes after a's last step is done, and the
		// prompt at b does not list a's step as running.
		waits bool
	}{
		{"continue holds the other branch", "continue", true},
		{"continue --all lets it run", "continue --all", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			ln.Close() // for b's nc to listen on
			p := startPTY(t, root, "build", "--no-cache", "--progress", "plain", "--break", "6", "--break", "11",
				"--set", "port="+port, "-f", filepath.Join(dir, "app.yml"), dir)
			p.expect("(kiln) ", 1, "graph")
			p.expect("in parallel:", 1, "help")
			p.expect("[b/0] done", 1, tc.cont) // b/0 ended its step, then waited
			p.expect("app.yml:11 (at breakpoint 11)", 1, "c")
			code, got := p.wait()
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			first, rest, _ := strings.Cut(got, "app.yml:11 (at breakpoint 11)")
			for _, want := range []string{
				"app.yml:6 (at breakpoint 6)",
				"running in parallel: [b/0] run: nc -l -p " + port + " -e true && sleep 2 && echo b1 > /b1 (ends its step, then waits)",
				"  parents:\n    [a/0] run: until nc 127.0.0.1 " + port + "; do sleep 0.1; done (done)\n",
				"  children:\n    [final/0] copy: --from=a /a2 -> /a2 (pending)\n",
				"    [b/0] run: nc -l -p " + port + " -e true && sleep 2 && echo b1 > /b1 (",
				"    [b/1] run: echo b2 > /b2 (pending)\n",
				"continue --all lets every branch run",
			} {
				if !strings.Contains(first, want) {
					t.Errorf("at the first stop, kiln did not print %q", want)
				}
			}
			aDone := strings.Contains(first, "[a/1] done")
			listed := strings.Contains(rest[:strings.Index(rest, "(kiln) ")], "running in parallel: [a/1]")
			if aDone != tc.waits || listed == tc.waits {
				t.Errorf("b stopped with a's step done = %v, and listed as running = %v; want done = %v", aDone, listed, tc.waits)
			}
		})
	}
}

// TestBuildDebugCommit: on a failed step, a shell makes what the step
// should have made, commit keeps it, and the build completes on it; the
// hand-made layer is not cached, so the next build runs the step again
// (and fails again).
func TestBuildDebugCommit(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": failingManifest})
	file := filepath.Join(dir, "app.yml")
	script := strings.Join([]string{
		"commit", // no shell yet
		"shell echo fixed > /fixed",
		"commit",
	}, "\n") + "\n"
	r := kiln(t, root, strings.NewReader(script), "build", "--debug-on-fail", "--break", "99", "--progress", "plain", "-t", "committed", "-f", file, dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d after commit, want 0", r.code)
	}
	for _, want := range []string{"commit: no shell ran at this stop", `committing the last shell's changes as "run: echo partial`, "[main/2] done"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("kiln did not print %q", want)
		}
	}
	h := mustKiln(t, root, "inspect", "committed")
	if !strings.Contains(h.stdout, "committed from a debugger shell") {
		t.Errorf("the image's history does not mark the hand-made layer:\n%s", h.stdout)
	}
	again := kiln(t, root, nil, "build", "--progress", "plain", "-f", file, dir)
	if again.code == 0 || !strings.Contains(again.stderr, "[main/1] running") {
		t.Errorf("the build after a commit reused the hand-made layer (exit %d):\n%s", again.code, again.stderr)
	}
}

// TestBuildDebugAcceptancePTY walks the debugger's main path on a
// terminal: a breakpoint on a line, continue to it, next twice, a shell
// that lists / and the toolbox (what it writes is thrown away), diff of a step that added and deleted files, and quit in
// the middle, which leaves no cache record for the steps that did not
// run (newRoot checks that no mount, process, container or snapshot is
// left).
func TestBuildDebugAcceptancePTY(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": debugManifest + "  - run: echo fourth > /fourth\n"})
	p := startPTY(t, root, "build", "--debug", "--progress", "plain", "-f", filepath.Join(dir, "app.yml"), dir)
	p.expect("(kiln) ", 1, "break 4")
	p.expect("(kiln) ", 2, "continue")
	p.expect("app.yml:4 (at breakpoint 4)", 1, "next")
	p.expect("app.yml:5 (after next)", 1, "diff")
	p.expect("D /gone", 1, "next")
	p.expect("app.yml:6 (after next)", 1, "shell")
	p.expect("# ", 1, "ls /; test -x /.kiln/bin/kiln && echo toolbox-$((1+1)); touch /from-shell")
	p.expect("# ", 2, "exit")
	p.expect("(kiln) ", 7, "ls /")
	p.expect("(kiln) ", 8, "quit")
	code, got := p.wait()
	if code == 0 {
		t.Error("quit: exit 0")
	}
	for _, want := range []string{
		"app.yml:4 (at breakpoint 4), before \"run: echo one",
		"changes of \"run: echo one > /one && rm /gone && echo hello again > /gre…\": 3\n",
		"A /one (4 B)", "M /greeting (12 B)", "D /gone",
		"third step ran",
		"aborted from the debugger",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the terminal did not show %q", want)
		}
	}
	// The shell sees the step's filesystem and the toolbox; what it
	// writes is thrown away.
	_, rest, _ := strings.Cut(got, "touch /from-shell")
	shell, after, _ := strings.Cut(rest, "# \x1b[6nexit")
	for _, f := range []string{"greeting", "one", "bin", "\ntoolbox-2\n"} {
		if !strings.Contains(shell, f) {
			t.Errorf("ls / in the shell did not list %s", f)
		}
	}
	if !strings.Contains(after, "greeting") || strings.Contains(after, "from-shell") {
		t.Error("after the shell, ls / does not show /greeting, or shows what the shell wrote")
	}
	// main/0, 1 and 2 ran and were cached; main/3, where the build
	// quit, was not.
	ls := mustKiln(t, root, "cache", "ls").stdout
	if n := strings.Count(ls, "\n") - 1; n != 3 || strings.Contains(ls, "fourth") {
		t.Errorf("after quit the cache holds %d records, want 3 (not the fourth step):\n%s", n, ls)
	}
}

// TestBuildDebugTestBreak: a breakpoint stops before a test too, which
// can go on but not be skipped.
func TestBuildDebugTestBreak(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": `from: busybox
steps:
  - run: echo a > /a
tests:
  - name: unit
    run: test -f /a
`})
	r := kiln(t, root, strings.NewReader("skip\nenv\nc\n"), "build", "--progress", "plain", "--break", "test: unit", "-f", filepath.Join(dir, "app.yml"), dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{
		`(at breakpoint test: unit), before "test: unit" [main/test/unit]`,
		`skip: "test: unit" is a test: it cannot be skipped (continue or quit)`,
		"command: test -f /a",
		"[main/test/unit] passed",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("kiln did not print %q", want)
		}
	}
}
