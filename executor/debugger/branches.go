package debugger

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/fsm"
)

// gate holds the build's other branches while the user looks at one.
//
// While a prompt is open, no other step starts: steps whose container
// already runs end their step, then wait before their next one. After
// continue, next, skip, retry, edit or commit, the branch of the stop
// has the focus: its steps run, one after the other, and the other
// branches go on waiting until it stops again or ends (its last step
// has run, or the next step needs another branch). continue --all drops
// the focus: every branch runs on, and stops at its own breakpoints.
type gate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	open    string // the node whose prompt is open, or ""
	focus   string // the node whose branch runs alone, or ""
	states  map[string]fsm.State
	names   map[string]string
	waiting map[string]bool // nodes held at the gate
	graph   *dag.Graph
	needed  map[*dag.Node]bool // the nodes the build runs
}

func newGate() *gate {
	g := &gate{states: map[string]fsm.State{}, names: map[string]string{}, waiting: map[string]bool{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// note records a node's transition and moves the focus on when the
// focused node has ended.
func (g *gate) note(e fsm.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.states[e.Node] = e.State
	g.names[e.Node] = e.Name
	if e.Node == g.focus && e.State.Final() {
		g.focus = g.next(e.Node, e.State)
		g.cond.Broadcast()
	}
}

// next returns the node the focus moves to once node has ended: the one
// step that builds on it, when every other node that step waits for has
// ended; else "" (the focus is dropped, so nothing waits on a held
// branch). The caller holds g.mu.
func (g *gate) next(node string, st fsm.State) string {
	if g.graph == nil || st == fsm.Failed || st == fsm.Cancelled {
		return ""
	}
	n := g.graph.Node(node)
	var cont *dag.Node
	for _, c := range g.graph.Dependents(n) {
		if c.Parent != n || c.Kind != dag.KindStep || !g.needed[c] {
			continue
		}
		if cont != nil {
			return "" // the branch forks: nothing to follow
		}
		cont = c
	}
	if cont == nil {
		return ""
	}
	for _, d := range cont.Deps {
		if d != n && !g.states[d.Key].Final() {
			return ""
		}
	}
	return cont.Key
}

// wait blocks until node may go on: no other node's prompt is open, and
// no other branch has the focus.
func (g *gate) wait(ctx context.Context, v *executor.NodeView) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.graph == nil && v.Graph != nil {
		g.graph, g.needed = v.Graph, map[*dag.Node]bool{}
		for _, n := range v.Graph.Needed() {
			g.needed[n] = true
		}
	}
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer stop()
	for !g.free(v.Node) && ctx.Err() == nil {
		g.waiting[v.Node] = true
		g.cond.Wait()
	}
	delete(g.waiting, v.Node)
}

func (g *gate) free(node string) bool {
	return (g.open == "" || g.open == node) && (g.focus == "" || g.focus == node)
}

// stop opens node's prompt; it reports false when another node has the
// prompt or the focus (it got there first), and the caller must wait
// again.
func (g *gate) stop(node string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.free(node) {
		return false
	}
	g.open = node
	return true
}

// resume closes node's prompt and gives its branch the focus, or with
// all, lets every branch run.
func (g *gate) resume(node string, all bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open, g.focus = "", node
	if all {
		g.focus = ""
	}
	g.cond.Broadcast()
}

// others lists the nodes other than node that are under way (their
// container runs, or they look up the cache or commit) and those held
// at the gate, as "[key] name".
func (g *gate) others(node string) (running, waiting []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, st := range g.states {
		if k == node || g.waiting[k] {
			continue
		}
		switch st {
		case fsm.CheckingCache, fsm.Creating, fsm.Running, fsm.Committing:
			running = append(running, fmt.Sprintf("[%s] %s", k, g.names[k]))
		}
	}
	for k := range g.waiting {
		if k != node {
			waiting = append(waiting, fmt.Sprintf("[%s] %s", k, g.names[k]))
		}
	}
	sort.Strings(running)
	sort.Strings(waiting)
	return running, waiting
}

// state returns node's last known state.
func (g *gate) state(node string) fsm.State {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st, ok := g.states[node]; ok {
		return st
	}
	return fsm.Pending
}

// printOthers tells, at a stop, what the other branches are doing.
func (g *gate) printOthers(w io.Writer, node string) {
	running, waiting := g.others(node)
	if len(running) == 0 && len(waiting) == 0 {
		return
	}
	for _, r := range running {
		fmt.Fprintf(w, "  running in parallel: %s (ends its step, then waits)\n", r)
	}
	for _, r := range waiting {
		fmt.Fprintf(w, "  waiting: %s\n", r)
	}
	fmt.Fprintln(w, "  the other branches wait until this one stops again or ends; continue --all lets them run on")
}

func graphCmd(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	g := s.v.Graph
	if g == nil {
		return fmt.Errorf("no graph for %s", s.v.Node)
	}
	n := g.Node(s.v.Node)
	if n == nil {
		return fmt.Errorf("%s is not in the graph", s.v.Node)
	}
	show := func(ns []*dag.Node) string {
		if len(ns) == 0 {
			return " none"
		}
		var b strings.Builder
		for _, m := range ns {
			fmt.Fprintf(&b, "\n    [%s] %s (%s)", m.Key, m.Name, d.gate.state(m.Key))
		}
		return b.String()
	}
	fmt.Fprintf(d.out, "[%s] %s at %s\n", n.Key, n.Name, where(s.v))
	fmt.Fprintf(d.out, "  parents:%s\n", show(n.Deps))
	fmt.Fprintf(d.out, "  children:%s\n", show(g.Dependents(n)))
	fmt.Fprintf(d.out, "  in parallel:%s\n", show(parallel(g, n)))
	return nil
}

// parallel returns the nodes the build needs that are neither ancestors
// nor descendants of n: those that may run at the same time.
func parallel(g *dag.Graph, n *dag.Node) []*dag.Node {
	related := map[*dag.Node]bool{n: true}
	var up func(*dag.Node)
	up = func(m *dag.Node) {
		for _, p := range m.Deps {
			if !related[p] {
				related[p] = true
				up(p)
			}
		}
	}
	var down func(*dag.Node)
	down = func(m *dag.Node) {
		for _, c := range g.Dependents(m) {
			if !related[c] {
				related[c] = true
				down(c)
			}
		}
	}
	up(n)
	down(n)
	var out []*dag.Node
	for _, m := range g.Needed() {
		if !related[m] {
			out = append(out, m)
		}
	}
	return out
}
