package dap

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"

	godap "github.com/google/go-dap"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/fsm"
)

// LaunchArgs are the arguments of a launch request: what to build, and
// how.
type LaunchArgs struct {
	// Manifest is the app.yml or Dockerfile to build: an absolute path,
	// or one relative to Cwd.
	Manifest string `json:"manifest"`
	// Cwd is the directory the relative paths of the launch are relative
	// to, as a launch.json's "cwd" (default: the manifest's directory).
	// kiln dap's own working directory is never used: an editor may
	// start it anywhere.
	Cwd string `json:"cwd,omitempty"`
	// Context is the build context directory (default: the manifest's).
	Context string `json:"context,omitempty"`
	Tag     string `json:"tag,omitempty"`
	// Values are YAML files of template values.
	Values    []string `json:"values,omitempty"`
	Set       []string `json:"set,omitempty"`
	BuildArgs []string `json:"buildArgs,omitempty"`
	Target    string   `json:"target,omitempty"`
	// Root is kiln's --root (default: kiln dap's).
	Root    string `json:"root,omitempty"`
	NoCache bool   `json:"noCache,omitempty"`
	// StopOnEntry stops before the first step.
	StopOnEntry bool `json:"stopOnEntry,omitempty"`
}

// Options say how a session loads and builds what a launch names.
type Options struct {
	// Load compiles the manifest of a launch, so that breakpoints are
	// checked against its steps before the build starts.
	Load func(ctx context.Context, args LaunchArgs) (*dag.Graph, error)
	// Build runs the build of a launch. It must make its observer
	// wrap(obs) for the build's own obs; what it prints goes to console.
	Build func(ctx context.Context, args LaunchArgs, wrap func(fsm.Observer) fsm.Observer, console io.Writer) error
	// Status is the exit status of a build that Build ended with err
	// under ctx, for the exited event (nil: 0, or 1 after an error). A
	// build the session stopped ends with ctx cancelled.
	Status func(ctx context.Context, err error) int
	// Terminal keeps the filesystem of a stopped step and returns the
	// name it is kept under and the command line that opens a shell
	// there. It may be nil: there is no terminal then.
	Terminal func(ctx context.Context, v *executor.NodeView) (name string, argv []string, err error)
	// Forget removes what Terminal kept, when the session ends.
	Forget func(ctx context.Context, name string) error
}

// Serve speaks DAP on r and w until the client disconnects or r ends.
// A build it launched is aborted, and waited for, before it returns.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) error {
	s := newSession(w, opts)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.end(ctx)
	br := bufio.NewReader(r)
	for {
		msg, err := godap.ReadProtocolMessage(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading a DAP message: %w", err)
		}
		if done := s.handle(ctx, msg); done {
			return nil
		}
	}
}

// session is one client's debugging session: at most one build.
type session struct {
	opts Options

	wmu sync.Mutex // one message at a time
	w   io.Writer
	seq int

	mu       sync.Mutex
	cond     *sync.Cond
	args     LaunchArgs
	graph    *dag.Graph
	breaks   map[string]map[int]int // file → line → breakpoint ID
	files    map[string][]string    // the lines of the files column read
	nextID   int
	threads  map[string]int // node → thread ID
	nodes    map[int]string // thread ID → node
	states   map[string]fsm.State
	stopped  *stop
	stepping map[string]bool // next: stop before these nodes
	entered  bool
	noFail   bool // the client turned the "failed" exception filter off
	pausing  bool // pause: stop before the next step that starts
	quit     bool
	terminal bool     // the client runs runInTerminal
	kept     []string // what Terminal kept
	cancel   context.CancelFunc
	done     chan struct{} // closed when the build has ended
}

func newSession(w io.Writer, opts Options) *session {
	s := &session{opts: opts, w: w, breaks: map[string]map[int]int{}, files: map[string][]string{}, threads: map[string]int{},
		nodes: map[int]string{}, states: map[string]fsm.State{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// send writes a message with the session's next sequence number.
func (s *session) send(m godap.Message) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.seq++
	switch m := m.(type) {
	case godap.ResponseMessage:
		m.GetResponse().Seq = s.seq
	case godap.EventMessage:
		m.GetEvent().Seq = s.seq
	case godap.RequestMessage:
		m.GetRequest().Seq = s.seq
	}
	_ = godap.WriteProtocolMessage(s.w, m) // the read loop ends with the client
}

func event(name string) godap.Event {
	return godap.Event{ProtocolMessage: godap.ProtocolMessage{Type: "event"}, Event: name}
}

func response(req godap.RequestMessage) godap.Response {
	r := req.GetRequest()
	return godap.Response{ProtocolMessage: godap.ProtocolMessage{Type: "response"}, RequestSeq: r.Seq, Command: r.Command, Success: true}
}

// fail answers req with an error message the client shows.
func (s *session) fail(req godap.RequestMessage, err error) {
	r := response(req)
	r.Success, r.Message = false, err.Error()
	s.send(&godap.ErrorResponse{Response: r, Body: godap.ErrorResponseBody{Error: &godap.ErrorMessage{Id: 1, Format: err.Error(), ShowUser: true}}})
}

// output sends text to the client's debug console.
func (s *session) output(category, text string) {
	s.send(&godap.OutputEvent{Event: event("output"), Body: godap.OutputEventBody{Category: category, Output: text}})
}

// console is an io.Writer of output events.
type console struct {
	s        *session
	category string
}

func (c console) Write(p []byte) (int, error) {
	c.s.output(c.category, string(p))
	return len(p), nil
}

// handle answers one message; it reports true when the session is over.
func (s *session) handle(ctx context.Context, msg godap.Message) bool {
	switch m := msg.(type) {
	case *godap.InitializeRequest:
		s.mu.Lock()
		s.terminal = m.Arguments.SupportsRunInTerminalRequest
		s.mu.Unlock()
		s.send(&godap.InitializeResponse{Response: response(m), Body: godap.Capabilities{
			SupportsConfigurationDoneRequest: true,
			SupportsEvaluateForHovers:        false,
			SupportsExceptionInfoRequest:     true,
			SupportsTerminateRequest:         true,
			SupportsRestartFrame:             true,
			ExceptionBreakpointFilters: []godap.ExceptionBreakpointsFilter{
				{Filter: "failed", Label: "Failed steps", Default: true},
			},
		}})
	case *godap.LaunchRequest:
		if err := s.launch(ctx, m.Arguments); err != nil {
			s.fail(m, err)
			return false
		}
		s.send(&godap.LaunchResponse{Response: response(m)})
		s.send(&godap.InitializedEvent{Event: event("initialized")})
	case *godap.SetBreakpointsRequest:
		s.send(&godap.SetBreakpointsResponse{Response: response(m), Body: godap.SetBreakpointsResponseBody{Breakpoints: s.setBreakpoints(m.Arguments)}})
	case *godap.SetExceptionBreakpointsRequest:
		s.mu.Lock()
		s.noFail = !slices.Contains(m.Arguments.Filters, "failed")
		s.mu.Unlock()
		s.send(&godap.SetExceptionBreakpointsResponse{Response: response(m)})
	case *godap.ConfigurationDoneRequest:
		s.send(&godap.ConfigurationDoneResponse{Response: response(m)})
		s.start(ctx)
	case *godap.ThreadsRequest:
		s.send(&godap.ThreadsResponse{Response: response(m), Body: godap.ThreadsResponseBody{Threads: s.threadList()}})
	case *godap.StackTraceRequest:
		frames := s.stackTrace(m.Arguments.ThreadId)
		s.send(&godap.StackTraceResponse{Response: response(m), Body: godap.StackTraceResponseBody{StackFrames: frames, TotalFrames: len(frames)}})
	case *godap.ScopesRequest:
		s.send(&godap.ScopesResponse{Response: response(m), Body: godap.ScopesResponseBody{Scopes: s.scopes()}})
	case *godap.VariablesRequest:
		s.send(&godap.VariablesResponse{Response: response(m), Body: godap.VariablesResponseBody{Variables: s.variables(m.Arguments.VariablesReference)}})
	case *godap.ContinueRequest:
		if err := s.resume(executor.Continue, false); err != nil {
			s.fail(m, err)
			return false
		}
		s.send(&godap.ContinueResponse{Response: response(m), Body: godap.ContinueResponseBody{AllThreadsContinued: true}})
	case *godap.NextRequest:
		if err := s.resume(executor.Continue, true); err != nil {
			s.fail(m, err)
			return false
		}
		s.send(&godap.NextResponse{Response: response(m)})
	case *godap.PauseRequest:
		s.mu.Lock()
		s.pausing = true
		s.mu.Unlock()
		s.send(&godap.PauseResponse{Response: response(m)})
	case *godap.RestartFrameRequest:
		if err := s.resume(executor.Retry, false); err != nil {
			s.fail(m, err)
			return false
		}
		s.send(&godap.RestartFrameResponse{Response: response(m)})
	case *godap.EvaluateRequest:
		res, err := s.evaluate(ctx, m.Arguments.Expression)
		if err != nil {
			s.fail(m, err)
			return false
		}
		s.send(&godap.EvaluateResponse{Response: response(m), Body: godap.EvaluateResponseBody{Result: res}})
	case *godap.ExceptionInfoRequest:
		body, err := s.exceptionInfo(m.Arguments.ThreadId)
		if err != nil {
			s.fail(m, err)
			return false
		}
		s.send(&godap.ExceptionInfoResponse{Response: response(m), Body: body})
	case *godap.TerminateRequest:
		s.end(ctx)
		s.send(&godap.TerminateResponse{Response: response(m)})
	case *godap.DisconnectRequest:
		s.end(ctx)
		s.send(&godap.DisconnectResponse{Response: response(m)})
		return true
	case *godap.RunInTerminalResponse:
		if !m.Success {
			s.output("stderr", "the client could not open a terminal: "+m.Message+"\n")
		}
	case godap.RequestMessage:
		s.fail(m, fmt.Errorf("kiln dap does not support the %s request", m.GetRequest().Command))
	}
	return false
}

// launch checks the launch's arguments and compiles its manifest.
func (s *session) launch(ctx context.Context, raw json.RawMessage) error {
	var args LaunchArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return fmt.Errorf("reading the launch arguments: %w", err)
	}
	if err := args.resolve(); err != nil {
		return err
	}
	s.mu.Lock()
	busy := s.done != nil || s.graph != nil
	s.mu.Unlock()
	if busy {
		return errors.New("this session has launched a build already: start a new session")
	}
	g, err := s.opts.Load(ctx, args)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.args, s.graph = args, g
	s.mu.Unlock()
	return nil
}

// resolve makes the launch's paths absolute, as a launch.json's are
// meant: against "cwd" when given, else against the manifest's
// directory; never against kiln dap's working directory, which is
// wherever the editor started it.
func (a *LaunchArgs) resolve() error {
	if a.Manifest == "" {
		return errors.New(`launch needs "manifest": the path of an app.yml or a Dockerfile`)
	}
	if a.Cwd != "" && !filepath.IsAbs(a.Cwd) {
		return fmt.Errorf(`launch: "cwd" is %q: it must be an absolute path ("${workspaceFolder}")`, a.Cwd)
	}
	if !filepath.IsAbs(a.Manifest) {
		if a.Cwd == "" {
			return fmt.Errorf(`launch: "manifest" is %q, a relative path, and there is no "cwd" it is relative to: give an absolute path ("${workspaceFolder}/app.yml") or a "cwd"`, a.Manifest)
		}
		a.Manifest = filepath.Join(a.Cwd, a.Manifest)
	}
	a.Manifest = filepath.Clean(a.Manifest)
	base := cmp.Or(a.Cwd, filepath.Dir(a.Manifest))
	abs := func(p string) string {
		switch {
		case p == "":
			return ""
		case filepath.IsAbs(p):
			return filepath.Clean(p)
		}
		return filepath.Join(base, p)
	}
	a.Context, a.Root = abs(a.Context), abs(a.Root)
	a.Values = slices.Clone(a.Values)
	for i, v := range a.Values {
		a.Values[i] = abs(v)
	}
	return nil
}

// start runs the launched build; when it ends, the client is told its
// result, then that the session is over.
func (s *session) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.graph == nil || s.done != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	args, done := s.args, s.done
	go func() {
		defer close(done)
		err := s.opts.Build(ctx, args, s.wrap, console{s, "console"})
		code := 0
		switch {
		case s.opts.Status != nil:
			code = s.opts.Status(ctx, err)
		case err != nil:
			code = 1
		}
		// A build the client stopped (disconnect, terminate) ends as
		// interrupted, without a word: the user asked for it.
		if err != nil && ctx.Err() == nil {
			s.output("stderr", fmt.Sprintf("kiln: %v\n", err))
		}
		s.send(&godap.ExitedEvent{Event: event("exited"), Body: godap.ExitedEventBody{ExitCode: code}})
		s.send(&godap.TerminatedEvent{Event: event("terminated")})
	}()
}

// end aborts the build, if one runs, waits for it, and removes what
// terminals kept.
func (s *session) end(ctx context.Context) {
	s.mu.Lock()
	s.quit = true
	// The build's context first: the build must see that it was stopped,
	// not that a step was aborted.
	if s.cancel != nil {
		s.cancel()
	}
	if s.stopped != nil {
		s.stopped.resume <- executor.Action{Kind: executor.Abort}
		s.stopped = nil
	}
	s.cond.Broadcast()
	done, kept := s.done, s.kept
	s.kept = nil
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	for _, name := range kept {
		if err := s.opts.Forget(context.WithoutCancel(ctx), name); err != nil {
			s.output("stderr", fmt.Sprintf("kiln: removing the kept step %s: %v\n", name, err))
		}
	}
}
