package dap

import (
	"context"
	"errors"
	"fmt"

	godap "github.com/google/go-dap"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/fsm"
)

// inspector is the session as the executor sees it: it passes events
// on to the build's own observer and stops steps for the client.
type inspector struct {
	s   *session
	obs fsm.Observer
}

var _ executor.Inspector = inspector{}

// wrap makes the session the inspector of a build whose observer is obs.
func (s *session) wrap(obs fsm.Observer) fsm.Observer {
	return inspector{s: s, obs: obs}
}

// Event passes e on and notes the node's state. A node is a thread from
// its first step (checking its cache) to its end: the client is told it
// started, then that it exited, once each (again if a failed step is run
// again). A node cancelled before it started is never a thread.
func (in inspector) Event(e fsm.Event) {
	in.obs.Event(e)
	s := in.s
	s.mu.Lock()
	was, known := s.states[e.Node]
	s.states[e.Node] = e.State
	alive := known && was != fsm.Pending && !was.Final()
	reason := ""
	switch {
	case !alive && e.State != fsm.Pending && !e.State.Final():
		reason = "started"
	case alive && e.State.Final():
		reason = "exited"
	}
	id, ok := s.threads[e.Node]
	if !ok && reason == "started" {
		id = len(s.threads) + 1
		s.threads[e.Node], s.nodes[id] = id, e.Node
	}
	s.mu.Unlock()
	if reason != "" {
		s.send(&godap.ThreadEvent{Event: event("thread"), Body: godap.ThreadEventBody{Reason: reason, ThreadId: id}})
	}
}

// Output sends a node's output to the client, at the node's step. The
// build's own observer does not get it: the console would show it twice.
func (in inspector) Output(node string, p []byte) {
	body := godap.OutputEventBody{Category: "stdout", Output: string(p)}
	if pos := in.s.position(node); pos.File != "" {
		body.Source, body.Line, body.Column = source(pos.File), pos.Line, pos.Col
	}
	in.s.send(&godap.OutputEvent{Event: event("output"), Body: body})
}

// Before stops before a step on entry, at a breakpoint, or after next.
func (in inspector) Before(ctx context.Context, v *executor.NodeView) executor.Action {
	return in.s.pause(ctx, v, false)
}

// After stops after a step failed.
func (in inspector) After(ctx context.Context, v *executor.NodeView) executor.Action {
	if v.Err == nil || errors.Is(v.Err, context.Canceled) || ctx.Err() != nil {
		return executor.Action{Kind: executor.Continue}
	}
	return in.s.pause(ctx, v, true)
}

// stop is the one step the build is stopped at.
type stop struct {
	v      *executor.NodeView
	thread int
	reason string
	resume chan executor.Action // buffered: whoever clears stopped sends once
}

// pause waits while another step is stopped, then stops v if it should,
// and returns what the client chose.
func (s *session) pause(ctx context.Context, v *executor.NodeView, after bool) executor.Action {
	s.mu.Lock()
	wake := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer wake()
	for s.stopped != nil && !s.quit && ctx.Err() == nil {
		s.cond.Wait()
	}
	if s.quit || ctx.Err() != nil {
		s.mu.Unlock()
		return executor.Action{Kind: executor.Abort}
	}
	reason, hit := s.why(v, after)
	s.entered = true
	if reason == "" {
		s.mu.Unlock()
		return executor.Action{Kind: executor.Continue}
	}
	st := &stop{v: v, thread: s.threads[v.Node], reason: reason, resume: make(chan executor.Action, 1)}
	s.stopped, s.stepping = st, nil
	s.mu.Unlock()
	if !after {
		// A test's (or run step's) services run at its stop, each a
		// thread: they start before the stop is reported. One that
		// fails is said here, and fails the node when it goes on.
		if err := v.StartServices(ctx); err != nil {
			s.send(&godap.OutputEvent{Event: event("output"), Body: godap.OutputEventBody{Category: "stderr", Output: err.Error() + "\n"}})
		}
	}

	body := godap.StoppedEventBody{Reason: reason, ThreadId: st.thread, AllThreadsStopped: true,
		Description: fmt.Sprintf("before %s", v.Name), Text: v.Name}
	if hit != 0 {
		body.HitBreakpointIds = []int{hit}
	}
	if after {
		body.Description = fmt.Sprintf("%s failed", v.Name)
		if v.ExitCode >= 0 {
			body.Description = fmt.Sprintf("%s failed with exit code %d", v.Name, v.ExitCode)
		}
		body.Text = body.Description
	}
	s.send(&godap.StoppedEvent{Event: event("stopped"), Body: body})

	select {
	case act := <-st.resume:
		return act
	case <-ctx.Done():
		s.mu.Lock()
		if s.stopped == st {
			s.stopped = nil
			s.cond.Broadcast()
		}
		s.mu.Unlock()
		return executor.Action{Kind: executor.Abort}
	}
}

// why says why v stops, if it does, and which breakpoint it hit. The
// caller holds s.mu.
func (s *session) why(v *executor.NodeView, after bool) (reason string, hit int) {
	switch {
	case after && s.noFail:
		return "", 0
	case after:
		return "exception", 0
	case !s.entered && s.args.StopOnEntry:
		return "entry", 0
	case s.stepping[v.Node]:
		return "step", 0
	case s.pausing:
		s.pausing = false
		return "pause", 0
	}
	if id := s.hit(v.Pos); id != 0 {
		return "breakpoint", id
	}
	return "", 0
}

// resume lets the stopped step go on, or with Retry (restartFrame) runs
// a failed step again; with next, the build stops again before a step
// that builds on it.
func (s *session) resume(kind executor.ActionKind, next bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stopped
	if st == nil {
		return errors.New("the build is not stopped")
	}
	if kind == executor.Retry && st.reason != "exception" {
		return fmt.Errorf("%s has not failed: only a failed step can be run again", st.v.Name)
	}
	if next {
		s.stepping = map[string]bool{}
		g := st.v.Graph
		if g == nil {
			g = s.graph
		}
		if n := g.Node(st.v.Node); n != nil {
			for _, c := range g.Dependents(n) {
				s.stepping[c.Key] = true
			}
		}
	}
	s.stopped = nil
	st.resume <- executor.Action{Kind: kind}
	s.cond.Broadcast()
	return nil
}
