package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	godap "github.com/google/go-dap"
)

// dapClient drives kiln dap, running in this process, as an editor
// would: DAP messages over its stdin and stdout.
type dapClient struct {
	t    *testing.T
	in   *io.PipeWriter
	msgs chan godap.Message
	seq  int
	seen []godap.Message // every message read so far
	done chan int        // kiln dap's exit status

	mu     sync.Mutex
	stderr bytes.Buffer
}

func (c *dapClient) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.Write(p)
}

// startDAP runs kiln --root root dap.
func startDAP(t *testing.T, root string) *dapClient {
	t.Helper()
	return startDAPWith(t, func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
		return run(ctx, []string{"--root", root, "dap"}, stdin, stdout, stderr)
	})
}

// startDAPWith runs kiln dap with dap, which returns its exit status.
func startDAPWith(t *testing.T, dap func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int) *dapClient {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &dapClient{t: t, in: inW, msgs: make(chan godap.Message, 1024), done: make(chan int, 1)}
	ctx, cancel := context.WithTimeout(t.Context(), 4*commandTimeout)
	go func() {
		code := dap(ctx, inR, outW, c)
		outW.Close()
		c.done <- code
	}()
	go func() {
		defer close(c.msgs)
		br := bufio.NewReader(outR)
		for {
			m, err := godap.ReadProtocolMessage(br)
			if err != nil {
				return
			}
			c.msgs <- m
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		cancel()
		<-c.done
	})
	return c
}

// send sends a request; its seq is set here.
func (c *dapClient) send(command string, req godap.RequestMessage) {
	c.t.Helper()
	c.seq++
	r := req.GetRequest()
	r.Seq, r.Type, r.Command = c.seq, "request", command
	if err := godap.WriteProtocolMessage(c.in, req); err != nil {
		c.t.Fatalf("sending %s: %v", command, err)
	}
}

// next returns the next message of type T for which ok holds, or fails
// the test after a while.
func next[T godap.Message](c *dapClient, ok func(T) bool) T {
	c.t.Helper()
	timeout := time.After(2 * commandTimeout)
	for {
		select {
		case m, open := <-c.msgs:
			if !open {
				c.t.Fatalf("kiln dap ended while waiting for a %T\nstderr: %s\noutput: %s", *new(T), c.stderrText(), c.output())
			}
			c.seen = append(c.seen, m)
			if er, isErr := m.(*godap.ErrorResponse); isErr {
				c.t.Fatalf("%s failed: %s", er.Command, er.Message)
			}
			if v, is := m.(T); is && (ok == nil || ok(v)) {
				return v
			}
		case <-timeout:
			c.t.Fatalf("no %T came\noutput: %s", *new(T), c.output())
		}
	}
}

func (c *dapClient) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// output is what output events said so far, of the categories given
// (of any, without).
func (c *dapClient) output(categories ...string) string {
	var b strings.Builder
	for _, m := range c.seen {
		if o, ok := m.(*godap.OutputEvent); ok && (len(categories) == 0 || slices.Contains(categories, o.Body.Category)) {
			b.WriteString(o.Body.Output)
		}
	}
	return b.String()
}

// launch initializes kiln dap and launches a build of manifest.
func (c *dapClient) launch(args map[string]any, terminal bool) {
	c.t.Helper()
	c.send("initialize", &godap.InitializeRequest{Arguments: godap.InitializeRequestArguments{
		AdapterID: "kiln", LinesStartAt1: true, PathFormat: "path", SupportsRunInTerminalRequest: terminal}})
	caps := next[*godap.InitializeResponse](c, nil)
	if !caps.Body.SupportsConfigurationDoneRequest {
		c.t.Error("kiln dap does not ask for configurationDone")
	}
	raw, err := json.Marshal(args)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send("launch", &godap.LaunchRequest{Arguments: raw})
	next[*godap.LaunchResponse](c, nil)
	next[*godap.InitializedEvent](c, nil)
}

// stopped waits for the next stopped event, and returns it with the
// top frame of its thread.
func (c *dapClient) stopped() (*godap.StoppedEvent, godap.StackFrame) {
	c.t.Helper()
	ev := next[*godap.StoppedEvent](c, nil)
	c.send("stackTrace", &godap.StackTraceRequest{Arguments: godap.StackTraceArguments{ThreadId: ev.Body.ThreadId}})
	st := next[*godap.StackTraceResponse](c, nil)
	if len(st.Body.StackFrames) == 0 {
		c.t.Fatalf("no stack frame for thread %d", ev.Body.ThreadId)
	}
	return ev, st.Body.StackFrames[0]
}

// variables returns the variables of the scope named scope, by name.
func (c *dapClient) variables(frame int, scope string) map[string]string {
	c.t.Helper()
	c.send("scopes", &godap.ScopesRequest{Arguments: godap.ScopesArguments{FrameId: frame}})
	for _, s := range next[*godap.ScopesResponse](c, nil).Body.Scopes {
		if s.Name != scope {
			continue
		}
		c.send("variables", &godap.VariablesRequest{Arguments: godap.VariablesArguments{VariablesReference: s.VariablesReference}})
		out := map[string]string{}
		for _, v := range next[*godap.VariablesResponse](c, nil).Body.Variables {
			out[v.Name] = v.Value
		}
		return out
	}
	c.t.Fatalf("no scope %q", scope)
	return nil
}

// evaluate runs expr in the debug console.
func (c *dapClient) evaluate(expr string) string {
	c.t.Helper()
	c.send("evaluate", &godap.EvaluateRequest{Arguments: godap.EvaluateArguments{Expression: expr, Context: "repl"}})
	return next[*godap.EvaluateResponse](c, nil).Body.Result
}

// dapManifest has a run step per line, from line 4.
const dapManifest = `from: busybox
env: {MODE: dap}
steps:
  - run: echo one > /one
  - run: echo two > /two
  - run: echo third step ran
`

// TestDAPBreakpointNextContinue drives a build from breakpoint to
// breakpoint as VS Code does, and the build completes.
func TestDAPBreakpointNextContinue(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": dapManifest})
	manifest := filepath.Join(dir, "app.yml")
	c := startDAP(t, root)
	c.launch(map[string]any{"manifest": manifest, "context": dir, "tag": "dapped"}, false)

	c.send("setBreakpoints", &godap.SetBreakpointsRequest{Arguments: godap.SetBreakpointsArguments{
		Source:      godap.Source{Path: manifest},
		Breakpoints: []godap.SourceBreakpoint{{Line: 5}, {Line: 2}},
	}})
	type bp struct {
		Line     int
		Verified bool
	}
	var got []bp
	for _, b := range next[*godap.SetBreakpointsResponse](c, nil).Body.Breakpoints {
		got = append(got, bp{b.Line, b.Verified})
	}
	if diff := cmp.Diff([]bp{{5, true}, {2, false}}, got); diff != "" {
		t.Errorf("breakpoints (-want +got):\n%s", diff)
	}
	c.send("configurationDone", &godap.ConfigurationDoneRequest{})

	ev, top := c.stopped()
	if ev.Body.Reason != "breakpoint" || top.Line != 5 || top.Source == nil || top.Source.Path != manifest {
		t.Fatalf("stopped (%s) at %+v, want at the breakpoint on %s:5", ev.Body.Reason, top, manifest)
	}
	c.send("threads", &godap.ThreadsRequest{})
	var names []string
	for _, th := range next[*godap.ThreadsResponse](c, nil).Body.Threads {
		if th.Id == ev.Body.ThreadId {
			names = append(names, th.Name)
		}
	}
	if diff := cmp.Diff([]string{"[main/1] run: echo two > /two"}, names); diff != "" {
		t.Errorf("the stopped thread (-want +got):\n%s", diff)
	}
	env := c.variables(top.Id, "Environment")
	if env["MODE"] != "dap" || env["PATH"] == "" {
		t.Errorf("environment %v, want MODE=dap and a PATH", env)
	}
	step := c.variables(top.Id, "Step")
	if step["node"] != "main/1" || step["workdir"] != "/" || step["user"] != "root" || len(step["cacheKey"]) != 64 {
		t.Errorf("step variables %v, want node main/1, workdir /, user root, a cache key", step)
	}
	// Before the step: the first step's file is there, not its own.
	if got := c.evaluate("cat /one; test -e /two || echo no two"); got != "one\nno two" {
		t.Errorf("evaluate before step 2 = %q", got)
	}

	c.send("next", &godap.NextRequest{Arguments: godap.NextArguments{ThreadId: ev.Body.ThreadId}})
	next[*godap.NextResponse](c, nil)
	ev, top = c.stopped()
	if ev.Body.Reason != "step" || top.Line != 6 {
		t.Fatalf("after next: stopped (%s) at line %d, want (step) at 6", ev.Body.Reason, top.Line)
	}
	if got := c.evaluate("cat /two"); got != "two" {
		t.Errorf("evaluate after next = %q, want two", got)
	}

	c.send("continue", &godap.ContinueRequest{Arguments: godap.ContinueArguments{ThreadId: ev.Body.ThreadId}})
	next[*godap.ContinueResponse](c, nil)
	exited := next[*godap.ExitedEvent](c, nil)
	next[*godap.TerminatedEvent](c, nil)
	if exited.Body.ExitCode != 0 {
		t.Errorf("exit code %d, want 0\noutput: %s", exited.Body.ExitCode, c.output())
	}
	// The step's output came as an output event at its line.
	var at int
	for _, m := range c.seen {
		if o, ok := m.(*godap.OutputEvent); ok && strings.Contains(o.Body.Output, "third step ran") && o.Body.Category == "stdout" {
			at = o.Body.Line
		}
	}
	if at != 6 {
		t.Errorf("the output of line 6 came at line %d:\n%s", at, c.output())
	}
	c.send("disconnect", &godap.DisconnectRequest{})
	next[*godap.DisconnectResponse](c, nil)
	if code := <-c.done; code != 0 {
		t.Errorf("kiln dap: exit %d\nstderr: %s", code, c.stderrText())
	}
	c.done <- 0 // for the cleanup
	if got := mustKiln(t, root, "run", "dapped", "--", "cat", "/one", "/two").stdout; got != "one\ntwo\n" {
		t.Errorf("the built image has %q, want one and two", got)
	}
}

// dapFailing fails at line 4, after writing a file.
const dapFailing = `from: busybox
steps:
  - run: echo base > /base
  - run: echo partial > /partial && echo oops && exit 3
  - run: echo never ran
`

// TestDAPFailureDisconnect: a failing step stops as an exception with
// its exit code; a terminal opens on its filesystem; disconnect aborts
// the build and leaves no mount, process or cache record of it.
func TestDAPFailureDisconnect(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": dapFailing})
	manifest := filepath.Join(dir, "app.yml")
	c := startDAP(t, root)
	c.launch(map[string]any{"manifest": manifest}, true)
	c.send("configurationDone", &godap.ConfigurationDoneRequest{})

	ev, top := c.stopped()
	if ev.Body.Reason != "exception" || top.Line != 4 || !strings.Contains(ev.Body.Description, "exit code 3") {
		t.Fatalf("stopped (%s, %q) at line %d, want an exception with exit code 3 at line 4", ev.Body.Reason, ev.Body.Description, top.Line)
	}
	c.send("exceptionInfo", &godap.ExceptionInfoRequest{Arguments: godap.ExceptionInfoArguments{ThreadId: ev.Body.ThreadId}})
	if info := next[*godap.ExceptionInfoResponse](c, nil); info.Body.ExceptionId != "exit code 3" || !strings.Contains(info.Body.Details.StackTrace, "oops") {
		t.Errorf("exception info %+v, want exit code 3 and the output", info.Body)
	}
	if step := c.variables(top.Id, "Step"); step["exitCode"] != "3" {
		t.Errorf("step variables %v, want exitCode 3", step)
	}

	// The reverse request comes before the answer to evaluate.
	c.send("evaluate", &godap.EvaluateRequest{Arguments: godap.EvaluateArguments{Expression: "terminal", Context: "repl"}})
	rit := next[*godap.RunInTerminalRequest](c, nil)
	next[*godap.EvaluateResponse](c, nil)
	argv := rit.Arguments.Args
	if len(argv) < 3 || !cmp.Equal(argv[len(argv)-3:len(argv)-1], []string{"debug", "attach"}) {
		t.Fatalf("runInTerminal runs %q, want kiln debug attach NAME", argv)
	}
	name := argv[len(argv)-1]
	// What the terminal runs, run here.
	if got := mustKiln(t, root, "debug", "attach", name, "--", "cat", "/partial", "/base").stdout; got != "partial\nbase\n" {
		t.Errorf("the terminal's filesystem has %q, want the failed step's partial and base", got)
	}

	// Restart Frame runs the failed step again: it fails again.
	c.send("restartFrame", &godap.RestartFrameRequest{Arguments: godap.RestartFrameArguments{FrameId: top.Id}})
	next[*godap.RestartFrameResponse](c, nil)
	if ev, top = c.stopped(); ev.Body.Reason != "exception" || top.Line != 4 {
		t.Fatalf("after restartFrame: stopped (%s) at line %d, want the exception at line 4 again", ev.Body.Reason, top.Line)
	}
	if n := strings.Count(c.output("stdout"), "oops"); n != 2 {
		t.Errorf("the failed step printed oops %d times, want 2 (the run and the retry)", n)
	}

	c.send("disconnect", &godap.DisconnectRequest{})
	next[*godap.DisconnectResponse](c, nil)
	if code := <-c.done; code != 0 {
		t.Errorf("kiln dap: exit %d\nstderr: %s", code, c.stderrText())
	}
	c.done <- 0
	if out := c.output("stdout"); !strings.Contains(out, "oops") || strings.Contains(out, "never ran") {
		t.Errorf("the steps' output is %q: want the failed step's, not the next step's", out)
	}
	if ls := mustKiln(t, root, "debug", "ls").stdout; strings.Contains(ls, name) {
		t.Errorf("the terminal's copy %s is still kept:\n%s", name, ls)
	}
	ls := mustKiln(t, root, "cache", "ls").stdout
	if n := strings.Count(ls, "\n") - 1; n != 1 || !strings.Contains(ls, "echo base") {
		t.Errorf("the cache holds %d records, want 1 (the first step):\n%s", n, ls)
	}
}

// TestDAPStops runs builds to their end, continuing at each stop, and
// checks where each stop was: its reason and its frames, innermost
// first, as base name:line.
func TestDAPStops(t *testing.T) {
	root := buildRoot(t)
	type stop struct {
		Reason string
		Frames []string
	}
	for _, tc := range []struct {
		name     string
		files    map[string]string
		manifest string
		breaks   map[string][]int // file → lines
		entry    bool
		pause    bool     // sent before configurationDone
		filters  []string // the exception filters set, if not nil
		want     []stop
		exit     int
		stdout   string // what the steps' output has
	}{{
		name: "module steps",
		files: map[string]string{"modules/greet/module.yml": greetModule, "app.yml": `from: busybox
steps:
  - use: ./modules/greet
    with: {who: alice}
  - use: ./modules/greet
    with: {who: bob}
`},
		manifest: "app.yml",
		// Line 9 of the module: its second step, in both uses; line 5
		// of app.yml: each step of the second use.
		breaks: map[string][]int{"modules/greet/module.yml": {9}, "app.yml": {5}},
		want: []stop{
			{"breakpoint", []string{"module.yml:9", "app.yml:3"}},
			{"breakpoint", []string{"module.yml:8", "app.yml:5"}},
			{"breakpoint", []string{"module.yml:9", "app.yml:5"}},
		},
	}, {
		name:     "dockerfile on entry",
		files:    map[string]string{"Dockerfile": "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n"},
		manifest: "Dockerfile",
		breaks:   map[string][]int{"Dockerfile": {3}},
		entry:    true,
		want: []stop{
			{"entry", []string{"Dockerfile:2"}},
			{"breakpoint", []string{"Dockerfile:3"}},
		},
	}, {
		name:     "pause",
		files:    map[string]string{"Dockerfile": "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n"},
		manifest: "Dockerfile",
		pause:    true,
		want:     []stop{{"pause", []string{"Dockerfile:2"}}},
	}, {
		name:     "failed steps not caught",
		files:    map[string]string{"app.yml": dapFailing},
		manifest: "app.yml",
		filters:  []string{},
		exit:     1,
		stdout:   "oops",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, tc.files)
			c := startDAP(t, root)
			c.launch(map[string]any{"manifest": filepath.Join(dir, tc.manifest), "stopOnEntry": tc.entry}, false)
			for file, lines := range tc.breaks {
				args := godap.SetBreakpointsArguments{Source: godap.Source{Path: filepath.Join(dir, file)}}
				for _, l := range lines {
					args.Breakpoints = append(args.Breakpoints, godap.SourceBreakpoint{Line: l})
				}
				c.send("setBreakpoints", &godap.SetBreakpointsRequest{Arguments: args})
				for _, b := range next[*godap.SetBreakpointsResponse](c, nil).Body.Breakpoints {
					if !b.Verified {
						t.Errorf("breakpoint %s:%d not verified: %s", file, b.Line, b.Message)
					}
				}
			}
			if tc.filters != nil {
				c.send("setExceptionBreakpoints", &godap.SetExceptionBreakpointsRequest{Arguments: godap.SetExceptionBreakpointsArguments{Filters: tc.filters}})
				next[*godap.SetExceptionBreakpointsResponse](c, nil)
			}
			if tc.pause {
				c.send("pause", &godap.PauseRequest{})
				next[*godap.PauseResponse](c, nil)
			}
			c.send("configurationDone", &godap.ConfigurationDoneRequest{})
			var got []stop
			for {
				m := next[godap.EventMessage](c, func(e godap.EventMessage) bool {
					ev := e.GetEvent().Event
					return ev == "stopped" || ev == "exited"
				})
				if ex, ok := m.(*godap.ExitedEvent); ok {
					if ex.Body.ExitCode != tc.exit {
						t.Errorf("exit code %d, want %d\noutput: %s", ex.Body.ExitCode, tc.exit, c.output())
					}
					break
				}
				ev := m.(*godap.StoppedEvent)
				c.send("stackTrace", &godap.StackTraceRequest{Arguments: godap.StackTraceArguments{ThreadId: ev.Body.ThreadId}})
				s := stop{Reason: ev.Body.Reason}
				for _, f := range next[*godap.StackTraceResponse](c, nil).Body.StackFrames {
					s.Frames = append(s.Frames, fmt.Sprintf("%s:%d", f.Source.Name, f.Line))
				}
				got = append(got, s)
				c.send("continue", &godap.ContinueRequest{Arguments: godap.ContinueArguments{ThreadId: ev.Body.ThreadId}})
				next[*godap.ContinueResponse](c, nil)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("stops (-want +got):\n%s", diff)
			}
			if out := c.output("stdout"); !strings.Contains(out, tc.stdout) {
				t.Errorf("the steps' output %q lacks %q", out, tc.stdout)
			}
		})
	}
}

// dapBranches has two stages that build in parallel: a's first step
// waits until b's first step (line 10) runs, so that when a stops at
// line 6, b's step is in its container for two seconds more.
const dapBranches = `stages:
  a:
    from: busybox
    steps:
      - run: until nc 127.0.0.1 {{ port }}; do sleep 0.1; done
      - run: echo a1 > /a1
  b:
    from: busybox
    steps:
      - run: nc -l -p {{ port }} -e true && sleep 2 && echo b0 > /b0
      - run: echo b1 ran
  final:
    from: busybox
    steps:
      - copy: {from: a, src: /a1, dst: /a1}
      - copy: {from: b, src: /b0, dst: /b0}
target: final
`

// TestDAPBranches: while one branch is stopped, the other's running
// step is a thread of its own; it ends its step, then waits until the
// client continues.
func TestDAPBranches(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": dapBranches})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close() // for b's nc to listen on
	manifest := filepath.Join(dir, "app.yml")
	c := startDAP(t, root)
	c.launch(map[string]any{"manifest": manifest, "set": []string{"port=" + port}, "noCache": true}, false)
	c.send("setBreakpoints", &godap.SetBreakpointsRequest{Arguments: godap.SetBreakpointsArguments{
		Source: godap.Source{Path: manifest}, Breakpoints: []godap.SourceBreakpoint{{Line: 6}}}})
	next[*godap.SetBreakpointsResponse](c, nil)
	c.send("configurationDone", &godap.ConfigurationDoneRequest{})
	ev, top := c.stopped()
	if top.Line != 6 {
		t.Fatalf("stopped at line %d, want 6", top.Line)
	}
	c.send("threads", &godap.ThreadsRequest{})
	threads := map[string]int{}
	for _, th := range next[*godap.ThreadsResponse](c, nil).Body.Threads {
		key, _, _ := strings.Cut(strings.TrimPrefix(th.Name, "["), "]")
		threads[key] = th.Id
	}
	if threads["a/1"] != ev.Body.ThreadId || threads["b/0"] == 0 {
		t.Fatalf("threads %v: want a/1 (stopped, thread %d) and b/0 (running)", threads, ev.Body.ThreadId)
	}
	next[*godap.ThreadEvent](c, func(e *godap.ThreadEvent) bool {
		return e.Body.ThreadId == threads["b/0"] && e.Body.Reason == "exited"
	})
	time.Sleep(500 * time.Millisecond) // b/1 would have run by now
	c.send("threads", &godap.ThreadsRequest{})
	next[*godap.ThreadsResponse](c, nil) // the output before it has been read
	if strings.Contains(c.output("stdout"), "b1 ran") {
		t.Error("b's next step ran while a was stopped")
	}
	c.send("continue", &godap.ContinueRequest{Arguments: godap.ContinueArguments{ThreadId: ev.Body.ThreadId}})
	if exited := next[*godap.ExitedEvent](c, nil); exited.Body.ExitCode != 0 {
		t.Errorf("exit code %d\noutput: %s", exited.Body.ExitCode, c.output())
	}
	if !strings.Contains(c.output("stdout"), "b1 ran") {
		t.Errorf("b's next step did not run after continue:\n%s", c.output())
	}
}

// TestDAPTerminate: terminate at the entry stop aborts the build: it
// exits as interrupted (130), quietly; no step runs, and nothing is
// cached or left behind.
func TestDAPTerminate(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": dapManifest})
	c := startDAP(t, root)
	c.launch(map[string]any{"manifest": filepath.Join(dir, "app.yml"), "stopOnEntry": true}, false)
	c.send("configurationDone", &godap.ConfigurationDoneRequest{})
	if ev, top := c.stopped(); ev.Body.Reason != "entry" || top.Line != 4 {
		t.Fatalf("stopped (%s) at line %d, want on entry at line 4", ev.Body.Reason, top.Line)
	}
	c.send("terminate", &godap.TerminateRequest{})
	next[*godap.TerminateResponse](c, nil)
	var exits []int
	terminated := false
	for _, m := range c.seen {
		switch m := m.(type) {
		case *godap.ExitedEvent:
			exits = append(exits, m.Body.ExitCode)
		case *godap.TerminatedEvent:
			terminated = true
		}
	}
	if diff := cmp.Diff([]int{exitInterrupted}, exits); diff != "" || !terminated {
		t.Errorf("before the answer to terminate: exit codes (-want +got):\n%s\nterminated: %v", diff, terminated)
	}
	c.send("disconnect", &godap.DisconnectRequest{})
	next[*godap.DisconnectResponse](c, nil)
	if out := c.output("stdout"); out != "" {
		t.Errorf("steps ran: %q", out)
	}
	if out := c.output("stderr"); out != "" {
		t.Errorf("a stop the client asked for said %q", out)
	}
	if ls := mustKiln(t, root, "cache", "ls").stdout; strings.Count(ls, "\n") != 1 {
		t.Errorf("the cache holds records of an aborted build:\n%s", ls)
	}
}
