package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildDebugCommitBefore: at a stop before a step, a shell creates
// /extra and commit keeps it; the step still runs (it makes /made), the
// shell's changes go on top as a layer of their own, and the log and the
// image's history say so. The step after it sees both files.
func TestBuildDebugCommitBefore(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": `from: busybox
steps:
  - run: echo made > /made
  - run: test "$(cat /made)" = made && test "$(cat /extra)" = extra && echo both-there
`})
	file := filepath.Join(dir, "app.yml")
	script := strings.Join([]string{
		"shell echo extra > /extra && test ! -e /made && echo shell-before-made",
		"commit",
	}, "\n") + "\n"
	r := kiln(t, root, strings.NewReader(script), "build", "--break", "3", "--progress", "plain", "-t", "committed", "-f", file, dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d after commit at a stop before a step, want 0", r.code)
	}
	for _, want := range []string{
		"shell-before-made",
		// The log says the step runs, and what the new layer holds.
		`commit: "run: echo made > /made" runs, then the last shell's changes go on top of it`,
		"[main/0] running: run: echo made > /made",
		"[main/1] | both-there",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("kiln did not print %q", want)
		}
	}
	// The image's history has the step's own layer, then the shell's.
	h := mustKiln(t, root, "inspect", "committed").stdout
	t.Logf("inspect:\n%s", h)
	var by []string // each layer's CREATED BY, the date cut off
	_, hist, _ := strings.Cut(h, "\nHistory:\n")
	for _, l := range strings.Split(hist, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] != "CREATED" {
			by = append(by, strings.Join(f[1:], " "))
		}
	}
	want := []string{"kiln import", "run: echo made > /made", `debugger shell at the stop before "run: echo made > /made", committed on top of it`}
	if len(by) < 3 || strings.Join(by[:3], "\n") != strings.Join(want, "\n") {
		t.Errorf("the image's history is %q, want it to start %q", by, want)
	}
}

// TestBuildDebugCommitBeforeCached: the step the stop is before is in
// the cache: commit takes the cached layer (the step's own) and puts the
// shell's changes on top; the next plain build does not reuse the
// hand-made layer.
func TestBuildDebugCommitBeforeCached(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": `from: busybox
steps:
  - run: echo made > /made
  - run: test -f /made && ls /extra && echo extra-seen
`})
	file := filepath.Join(dir, "app.yml")
	if r := kiln(t, root, nil, "build", "--progress", "plain", "-f", file, dir); r.code == 0 {
		t.Fatal("the build without /extra passed")
	}
	r := kiln(t, root, strings.NewReader("shell touch /extra\ncommit\n"), "build", "--break", "3", "--progress", "plain", "-f", file, dir)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 || !strings.Contains(r.stderr, "[main/0] cached") || !strings.Contains(r.stderr, "extra-seen") {
		t.Errorf("commit on a cached step: exit %d; want the step cached and /extra seen after it", r.code)
	}
	if again := kiln(t, root, nil, "build", "--progress", "plain", "-f", file, dir); again.code == 0 {
		t.Errorf("the next build reused the hand-made layer:\n%s", again.stderr)
	}
}
