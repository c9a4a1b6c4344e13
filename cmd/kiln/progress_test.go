package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonEvent is one object of --progress json, as the tests read it.
type jsonEvent struct {
	Type       string   `json:"type"`
	Node       string   `json:"node"`
	Name       string   `json:"name"`
	State      string   `json:"state"`
	DurationMS float64  `json:"duration_ms"`
	ElapsedMS  *float64 `json:"elapsed_ms"`
	Output     string   `json:"output"`
	ExitCode   *int     `json:"exit_code"`
	Error      string   `json:"error"`
	Digest     string   `json:"digest"`
}

// jsonEvents parses the JSON lines of a build's stdout.
func jsonEvents(t *testing.T, stdout string) []jsonEvent {
	t.Helper()
	var out []jsonEvent
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e jsonEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("--progress json printed a line that is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// lastResult checks that the last event is the one result event and
// returns it.
func lastResult(t *testing.T, evs []jsonEvent) jsonEvent {
	t.Helper()
	n := 0
	for _, e := range evs {
		if e.Type == "result" {
			n++
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].Type != "result" || n != 1 {
		t.Fatalf("want one result event, last: %d result events in %+v", n, evs)
	}
	r := evs[len(evs)-1]
	if r.ExitCode == nil {
		t.Fatalf("the result event has no exit_code: %+v", r)
	}
	return r
}

// TestBuildJSONResult builds with --progress json a manifest that
// succeeds, one whose step fails and one that is interrupted: each ends
// with one result event carrying kiln's exit status, and on failure the
// failing node and the message.
func TestBuildJSONResult(t *testing.T) {
	root := buildRoot(t)

	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo ok > /ok\n"})
	r := kiln(t, root, nil, "build", "--progress", "json", dir)
	res := lastResult(t, jsonEvents(t, r.stdout))
	if r.code != 0 || *res.ExitCode != 0 || !strings.HasPrefix(res.Digest, "sha256:") || res.Node != "" || res.Error != "" {
		t.Errorf("success: exit %d, result %+v", r.code, res)
	}

	dir = writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo ok\n  - run: echo boom; exit 7\n  - run: echo never\n"})
	r = kiln(t, root, nil, "build", "--progress", "json", dir)
	res = lastResult(t, jsonEvents(t, r.stdout))
	if r.code != 1 || *res.ExitCode != 1 || res.Node != "main/1" || res.Name != "run: echo boom; exit 7" ||
		!strings.Contains(res.Error, "exit status 7") || !strings.Contains(res.Error, "kiln.yml:4") || res.Digest != "" {
		t.Errorf("failure: exit %d, result %+v", r.code, res)
	}

	dir = writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: sleep 30\n"})
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	out := &cancelOn{match: `"state":"running"`, cancel: cancel}
	var stderr bytes.Buffer
	code := run(ctx, []string{"--root", root, "build", "--progress", "json", dir}, strings.NewReader(""), out, &stderr)
	res = lastResult(t, jsonEvents(t, out.String()))
	if code != 130 || *res.ExitCode != 130 || res.Error == "" {
		t.Errorf("interrupted: exit %d, result %+v\nstderr: %s", code, res, stderr.String())
	}
}

// cancelOn is a stdout that cancels a context once what it was written
// contains match.
type cancelOn struct {
	mu     sync.Mutex
	b      bytes.Buffer
	match  string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b.Write(p)
	if strings.Contains(c.b.String(), c.match) {
		c.cancel()
	}
	return len(p), nil
}

func (c *cancelOn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// TestBuildStepDurations builds a step that sleeps 1 s: plain progress
// shows the step's whole duration, not its last transition's, and every
// JSON transition carries the time since the node started.
func TestBuildStepDurations(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: sleep 1\n"})

	r := mustKiln(t, root, "build", "--progress", "plain", "--no-cache", dir)
	m := regexp.MustCompile(`(?m)^\[main/0\] done: run: sleep 1 \((.+)\)$`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no done line for the sleep:\n%s", r.stderr)
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d < time.Second {
		t.Errorf("plain progress says the 1 s sleep took %s, want ≥ 1s", m[1])
	}

	r = mustKiln(t, root, "build", "--progress", "json", "--no-cache", dir)
	var last float64 = -1
	for _, e := range jsonEvents(t, r.stdout) {
		if e.Type != "state" || e.Node != "main/0" {
			continue
		}
		if e.ElapsedMS == nil {
			t.Fatalf("a transition has no elapsed_ms: %+v", e)
		}
		if *e.ElapsedMS < last {
			t.Errorf("elapsed_ms went back from %v to %v", last, *e.ElapsedMS)
		}
		last = *e.ElapsedMS
		if e.State == "done" && (*e.ElapsedMS < 1000 || e.DurationMS >= *e.ElapsedMS) {
			t.Errorf("done: elapsed_ms %v (want ≥ 1000), duration_ms %v (want less: the last transition only)", *e.ElapsedMS, e.DurationMS)
		}
	}
	if last < 1000 {
		t.Errorf("the sleep's last elapsed_ms is %v, want ≥ 1000", last)
	}
}

// TestBuildOutputOrder builds, several times, steps that print many lines
// at once: in JSON and plain progress every output of a node comes after
// its running event and before its end.
func TestBuildOutputOrder(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": `from: busybox
steps:
  - run: for i in $(seq 1 300); do echo "a line $i"; done
  - run: echo first; echo err >&2; for i in $(seq 1 50); do echo "b line $i"; done
`})
	for i := range 4 {
		r := mustKiln(t, root, "build", "--progress", "json", "--no-cache", dir)
		state := map[string]string{}
		seen := 0
		for _, e := range jsonEvents(t, r.stdout) {
			switch e.Type {
			case "state":
				state[e.Node] = e.State
			case "output":
				seen++
				if state[e.Node] != "running" {
					t.Fatalf("run %d: output %q of %s while it is %q, want running", i, e.Output, e.Node, state[e.Node])
				}
			}
		}
		if seen == 0 {
			t.Fatalf("run %d: no output events", i)
		}

		r = mustKiln(t, root, "build", "--progress", "plain", "--no-cache", dir)
		running := map[string]bool{}
		for _, l := range strings.Split(r.stderr, "\n") {
			node, rest, ok := strings.Cut(strings.TrimPrefix(l, "["), "] ")
			if !ok {
				continue
			}
			switch {
			case strings.HasPrefix(rest, "running: "):
				running[node] = true
			case strings.HasPrefix(rest, "done: "):
				running[node] = false
			case strings.HasPrefix(rest, "| ") && !running[node]:
				t.Fatalf("run %d: plain output line %q of %s outside its running and done lines:\n%s", i, l, node, r.stderr)
			}
		}
	}
}
