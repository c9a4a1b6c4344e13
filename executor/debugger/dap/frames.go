package dap

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	godap "github.com/google/go-dap"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/manifest"
)

// threadList returns the nodes under way and the stopped one, by ID.
func (s *session) threadList() []godap.Thread {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []godap.Thread{}
	for node, id := range s.threads {
		st := s.states[node]
		if st == fsm.Pending || st.Final() {
			if s.stopped == nil || s.stopped.thread != id {
				continue
			}
		}
		name := node
		if s.graph != nil {
			if n := s.graph.Node(node); n != nil {
				name = fmt.Sprintf("[%s] %s", node, n.Name)
			}
		}
		out = append(out, godap.Thread{Id: id, Name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// Variable references, valid while the build is stopped.
const (
	stepRef = 1
	envRef  = 2
)

// stackTrace returns the thread's step, then, for a module's step, the
// use: lines that inlined it, innermost first.
func (s *session) stackTrace(thread int) []godap.StackFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	node := s.nodes[thread]
	var name string
	var pos manifest.Pos
	switch {
	case s.stopped != nil && s.stopped.thread == thread:
		name, pos = s.stopped.v.Name, s.stopped.v.Pos
	case s.graph != nil && s.graph.Node(node) != nil:
		n := s.graph.Node(node)
		name, pos = n.Name, nodePos(n)
	default:
		return []godap.StackFrame{}
	}
	var frames []godap.StackFrame
	for p := &pos; p != nil; p = p.Caller {
		f := godap.StackFrame{Id: thread*1000 + len(frames) + 1, Name: name, Line: p.Line, Column: s.column(*p)}
		if p.File != "" {
			f.Source = source(p.File)
		}
		frames = append(frames, f)
		name = "use: " + filepath.Base(p.File)
	}
	return frames
}

func (s *session) scopes() []godap.Scope {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped == nil {
		return []godap.Scope{}
	}
	return []godap.Scope{
		{Name: "Step", VariablesReference: stepRef},
		{Name: "Environment", VariablesReference: envRef},
	}
}

// variables describes the stopped step: what it runs, where, as whom,
// its cache key and, after a failure, how it ended; or its environment.
func (s *session) variables(ref int) []godap.Variable {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []godap.Variable{}
	if s.stopped == nil {
		return out
	}
	v := s.stopped.v
	add := func(name, value string) {
		out = append(out, godap.Variable{Name: name, Value: value})
	}
	switch ref {
	case stepRef:
		add("node", v.Node)
		add("step", v.Name)
		add("stage", v.Stage)
		if len(v.Command) > 0 {
			add("command", strings.Join(v.Command, " "))
		}
		add("workdir", cmp.Or(v.Workdir, "/"))
		add("user", cmp.Or(v.User, "root"))
		add("cacheKey", v.CacheKey)
		if s.stopped.reason == "exception" {
			add("exitCode", strconv.Itoa(v.ExitCode))
			add("error", v.Err.Error())
			add("output", v.Output)
		}
	case envRef:
		for _, e := range v.Env {
			k, val, _ := strings.Cut(e, "=")
			add(k, val)
		}
	}
	return out
}

func (s *session) exceptionInfo(thread int) (godap.ExceptionInfoResponseBody, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stopped
	if st == nil || st.thread != thread || st.reason != "exception" {
		return godap.ExceptionInfoResponseBody{}, errors.New("no step failed on this thread")
	}
	return godap.ExceptionInfoResponseBody{
		ExceptionId: fmt.Sprintf("exit code %d", st.v.ExitCode),
		Description: st.v.Err.Error(),
		BreakMode:   "unhandled",
		Details:     &godap.ExceptionDetails{Message: st.v.Err.Error(), StackTrace: st.v.Output},
	}, nil
}

// outputLimit bounds what evaluate returns of a command's output.
const outputLimit = 64 << 10

// evaluate runs expr with /bin/sh -c in a throwaway container on the
// stopped step's filesystem, with its env, workdir and user, and returns
// its output; "terminal" opens a shell there in the client's terminal.
func (s *session) evaluate(ctx context.Context, expr string) (string, error) {
	s.mu.Lock()
	st, terminal := s.stopped, s.terminal
	s.mu.Unlock()
	if st == nil {
		return "", errors.New("the build is not stopped: evaluate runs a command on a stopped step's filesystem")
	}
	v := st.v
	if strings.TrimSpace(expr) == "terminal" {
		return s.openTerminal(ctx, v, terminal)
	}
	var out bytes.Buffer
	w := &limited{b: &out, n: outputLimit}
	p := engine.Process{Args: []string{"/bin/sh", "-c", expr}, Env: v.Env, Cwd: v.Workdir, User: v.User, Stdout: w, Stderr: w}
	status, err := v.Run(ctx, p, false)
	if err != nil {
		return "", fmt.Errorf("running %q on %s: %w", expr, v.Name, err)
	}
	res := strings.TrimRight(out.String(), "\n")
	if status.Code != 0 {
		res += fmt.Sprintf("\n(exit status %d)", status.Code)
	}
	return res, nil
}

// openTerminal keeps the stopped step's filesystem and asks the client
// to run a shell there; without runInTerminal, it says what to run.
func (s *session) openTerminal(ctx context.Context, v *executor.NodeView, terminal bool) (string, error) {
	if s.opts.Terminal == nil {
		return "", errors.New("this kiln dap cannot open terminals")
	}
	name, argv, err := s.opts.Terminal(ctx, v)
	if err != nil {
		return "", fmt.Errorf("keeping the filesystem of %s for a terminal: %w", v.Name, err)
	}
	s.mu.Lock()
	s.kept = append(s.kept, name)
	s.mu.Unlock()
	if !terminal {
		return "the client cannot run a terminal; run: " + strings.Join(argv, " "), nil
	}
	s.send(&godap.RunInTerminalRequest{
		Request: godap.Request{ProtocolMessage: godap.ProtocolMessage{Type: "request"}, Command: "runInTerminal"},
		Arguments: godap.RunInTerminalRequestArguments{
			Kind: "integrated", Title: "kiln: " + v.Name, Args: argv, Cwd: filepath.Dir(v.Pos.File),
		},
	})
	return "opened a shell on " + v.Name + " (kept as " + name + " until the session ends)", nil
}

// limited keeps the first n bytes written to it, from stdout and stderr
// at once.
type limited struct {
	mu sync.Mutex
	b  *bytes.Buffer
	n  int
}

func (l *limited) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
