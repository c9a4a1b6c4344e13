package fsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	looplab "github.com/looplab/fsm"
)

// State is where a node is in its life.
type State string

// The states of a node.
const (
	Pending       State = "pending"
	CheckingCache State = "checking-cache"
	Cached        State = "cached"
	Creating      State = "creating"
	Running       State = "running"
	Committing    State = "committing"
	Done          State = "done"
	Passed        State = "passed"
	Failed        State = "failed"
	Cancelled     State = "cancelled"
	// A service's life: pending → starting → ready → stopped.
	Starting State = "starting"
	Ready    State = "ready"
	Stopped  State = "stopped"
)

// Final reports whether a node in state s has ended.
func (s State) Final() bool {
	switch s {
	case Cached, Done, Passed, Failed, Cancelled, Stopped:
		return true
	}
	return false
}

// Event is one transition of one node.
type Event struct {
	Time     time.Time     `json:"time"`
	Node     string        `json:"node"` // the node's key, unique in the build
	Name     string        `json:"name"` // the step as the user wrote it
	From     State         `json:"from"`
	State    State         `json:"state"`
	CacheKey string        `json:"cache_key,omitempty"`
	Duration time.Duration `json:"duration"` // time spent in From
	// Elapsed is the time since the node started: since it left Pending
	// (or, retried by a debugger, Failed), so that the event that ends it
	// carries its whole duration.
	Elapsed time.Duration `json:"elapsed"`
	Error   string        `json:"error,omitempty"`
}

// Observer is told of every transition of every node, and of the output
// of the processes nodes run. Calls come from many goroutines; an
// Observer must be safe for concurrent use and should return quickly.
type Observer interface {
	Event(e Event)
	Output(node string, p []byte)
}

// Observers fans events out to several observers.
type Observers []Observer

// Event calls Event of each observer.
func (os Observers) Event(e Event) {
	for _, o := range os {
		o.Event(e)
	}
}

// Output calls Output of each observer.
func (os Observers) Output(node string, p []byte) {
	for _, o := range os {
		o.Output(node, p)
	}
}

// Kind says which life a machine follows.
type Kind int

// The kinds of life.
const (
	Step    Kind = iota // … → committing → done
	Test                // … → running → passed
	Service             // pending → starting → ready → stopped, or pending → cached
)

// transitions, by name: the events a machine accepts.
var transitions = []struct {
	name string
	src  []State
	dst  State
	// service: the transition is a service's (only); else a step's or
	// a test's.
	service bool
}{
	{"check", []State{Pending}, CheckingCache, false},
	{"hit", []State{CheckingCache}, Cached, false},
	{"miss", []State{CheckingCache}, Creating, false},
	{"start", []State{Creating}, Running, false},
	{"commit", []State{Running}, Committing, false},
	{"finish", []State{Committing}, Done, false},
	{"pass", []State{Running}, Passed, false},
	{"fail", []State{Pending, CheckingCache, Creating, Running, Committing}, Failed, false},
	{"cancel", []State{Pending, CheckingCache, Creating, Running, Committing}, Cancelled, false},
	// A failed node checks the cache again when a debugger retries it.
	{"retry", []State{Failed}, CheckingCache, false},
	{"boot", []State{Pending}, Starting, true},
	{"up", []State{Starting}, Ready, true},
	{"stop", []State{Ready}, Stopped, true},
	// A service none of whose users ran (their results were cached)
	// never starts.
	{"skip", []State{Pending}, Cached, true},
	{"fail", []State{Pending, Starting, Ready}, Failed, true},
	{"cancel", []State{Pending, Starting, Ready}, Cancelled, true},
}

// Machine is one node's life.
type Machine struct {
	node, name string
	kind       Kind
	obs        Observer

	mu       sync.Mutex
	f        *looplab.FSM
	since    time.Time // when it entered its current state
	started  time.Time // when it left Pending or, retried, Failed
	cacheKey string
}

// New returns the machine of node (its key) called name, in Pending,
// reporting to obs (which may be nil).
func New(node, name string, kind Kind, obs Observer) *Machine {
	var evs looplab.Events
	for _, t := range transitions {
		if t.service != (kind == Service) ||
			kind == Step && t.name == "pass" || kind == Test && (t.name == "commit" || t.name == "finish") {
			continue
		}
		src := make([]string, len(t.src))
		for i, s := range t.src {
			src[i] = string(s)
		}
		evs = append(evs, looplab.EventDesc{Name: t.name, Src: src, Dst: string(t.dst)})
	}
	return &Machine{
		node: node, name: name, kind: kind, obs: obs,
		f:     looplab.NewFSM(string(Pending), evs, nil),
		since: time.Now(),
	}
}

// State returns the current state.
func (m *Machine) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return State(m.f.Current())
}

// SetCacheKey records the node's cache key, reported with later events.
func (m *Machine) SetCacheKey(k string) {
	m.mu.Lock()
	m.cacheKey = k
	m.mu.Unlock()
}

// To moves the machine to state to, reporting the transition, or returns
// an error if the transition is not allowed from the current state.
// cause is reported with Failed and Cancelled.
func (m *Machine) To(ctx context.Context, to State, cause error) error {
	m.mu.Lock()
	from := State(m.f.Current())
	name := ""
	for _, t := range transitions {
		if t.dst != to {
			continue
		}
		for _, s := range t.src {
			if s == from && m.f.Can(t.name) {
				name = t.name
			}
		}
	}
	if name == "" {
		m.mu.Unlock()
		return fmt.Errorf("node %s: illegal transition %s → %s", m.node, from, to)
	}
	// The event's own context: looplab cancels it when Event returns.
	if err := m.f.Event(context.WithoutCancel(ctx), name); err != nil {
		var nt looplab.NoTransitionError
		if !errors.As(err, &nt) {
			m.mu.Unlock()
			return fmt.Errorf("node %s: %s → %s: %w", m.node, from, to, err)
		}
	}
	now := time.Now()
	if from == Pending || from == Failed {
		m.started = now // the node starts, or starts again
	}
	e := Event{Time: now, Node: m.node, Name: m.name, From: from, State: to, CacheKey: m.cacheKey,
		Duration: now.Sub(m.since), Elapsed: now.Sub(m.started)}
	if cause != nil {
		e.Error = cause.Error()
	}
	m.since = now
	m.mu.Unlock()
	if m.obs != nil {
		m.obs.Event(e)
	}
	return nil
}

// Mermaid draws the machines' states and transitions, for documentation.
func Mermaid(kind Kind) (string, error) {
	m := New("", "", kind, nil)
	return looplab.VisualizeWithType(m.f, looplab.MERMAID)
}
