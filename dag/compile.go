package dag

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/manifest"
	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	"gonum.org/v1/gonum/graph/topo"
)

// CycleError is the cause of the error Compile returns for stages that
// use each other (by from or copy.from): Stages is the path, with the
// first stage repeated at the end, each stage using the next one.
type CycleError struct {
	Stages []string
}

func (e *CycleError) Error() string {
	return strings.Join(e.Stages, " → ")
}

// Compile builds and validates the graph of b: a base node per stage FROM
// an image or scratch, one node per step, and a node per test, branching
// off the last node of its stage. An empty b.Target means the last stage.
//
// A stage's from names another stage when a stage has that name, and an
// image otherwise; a copy's from always names a stage. Compile returns a
// *manifest.Error at the position of the stage, step or test for an
// unknown stage in copy.from or the target, a stage built FROM itself or
// copying from itself, a cycle between stages (its Err is a *CycleError),
// and a duplicate stage or test name. It never panics.
func Compile(b *manifest.Build) (*Graph, error) {
	if b == nil {
		return nil, errors.New("compile build graph: no build")
	}
	if err := validate(b); err != nil {
		return nil, err
	}
	target := b.Target
	if target == "" {
		target = b.Stages[len(b.Stages)-1].Name
	}
	stageDeps := stageDepsOf(b)
	if err := checkCycles(b, stageDeps); err != nil {
		return nil, err
	}

	g := &Graph{
		g:         simple.NewDirectedGraph(),
		keys:      map[string]*Node{},
		last:      map[string]*Node{},
		stageDeps: stageDeps,
		target:    target,
	}

	// Nodes, with IDs in written order.
	add := func(n *Node) *Node {
		n.ID = int64(len(g.nodes))
		g.nodes = append(g.nodes, n)
		g.keys[n.Key] = n
		return n
	}
	bases := map[string]*Node{}
	steps := map[string][]*Node{}
	for _, s := range b.Stages {
		if b.StageByName(s.From) == nil {
			bases[s.Name] = add(&Node{Key: s.Name + "/base", Name: "from: " + s.From, Kind: KindBase, Stage: s, Index: -1})
		}
		for i, st := range s.Steps {
			name := st.Name
			if name == "" {
				name = string(st.Kind)
			}
			steps[s.Name] = append(steps[s.Name], add(&Node{Key: fmt.Sprintf("%s/%d", s.Name, i), Name: name, Kind: KindStep, Stage: s, Step: st, Index: i}))
		}
		for _, t := range s.Tests {
			add(&Node{Key: s.Name + "/test/" + t.Name, Name: "test: " + t.Name, Kind: KindTest, Stage: s, Test: t, Index: -1})
		}
		addServices(s, add)
	}

	// The last node of every stage; the stages have no cycle.
	var last func(s *manifest.Stage) *Node
	last = func(s *manifest.Stage) *Node {
		if n, ok := g.last[s.Name]; ok {
			return n
		}
		var n *Node
		switch st := steps[s.Name]; {
		case len(st) > 0:
			n = st[len(st)-1]
		case bases[s.Name] != nil:
			n = bases[s.Name]
		default:
			n = last(b.StageByName(s.From))
		}
		g.last[s.Name] = n
		return n
	}
	for _, s := range b.Stages {
		last(s)
	}

	// Parents and deps.
	for _, n := range g.nodes {
		s := n.Stage
		switch n.Kind {
		case KindStep:
			switch {
			case n.Index > 0:
				n.Parent = steps[s.Name][n.Index-1]
			case bases[s.Name] != nil:
				n.Parent = bases[s.Name]
			default:
				n.Parent = g.last[s.From]
			}
			n.Deps = []*Node{n.Parent}
			for _, f := range stepFroms(n.Step) {
				n.Deps = append(n.Deps, g.last[f])
			}
			for _, name := range n.Step.Services {
				key := StepServiceKey(s.Name, n.Index, name)
				if s.ServiceByName(name).Share {
					key = s.Name + "/service/" + name
				}
				n.Deps = append(n.Deps, g.keys[key])
			}
			slices.SortFunc(n.Deps, byID)
			n.Deps = slices.Compact(n.Deps)
		case KindTest:
			n.Parent = g.last[s.Name]
			n.Deps = []*Node{n.Parent}
			for _, name := range n.Test.Services {
				key := s.Name + "/test/" + n.Test.Name + "/service/" + name
				if s.ServiceByName(name).Share {
					key = s.Name + "/service/" + name
				}
				n.Deps = append(n.Deps, g.keys[key])
			}
			slices.SortFunc(n.Deps, byID)
		case KindService:
			if n.Service.Stage != "" {
				n.Deps = []*Node{g.last[n.Service.Stage]}
			}
		}
	}

	// The gonum graph, for drawing, and the reverse edges.
	g.dependents = make([][]*Node, len(g.nodes))
	for _, n := range g.nodes {
		g.g.AddNode(gnode{n})
	}
	for _, n := range g.nodes {
		for _, d := range n.Deps {
			if d == n {
				return nil, fmt.Errorf("compile build graph: node %q depends on itself", n.Key)
			}
			g.g.SetEdge(g.g.NewEdge(gnode{d}, gnode{n}))
			g.dependents[d.ID] = append(g.dependents[d.ID], n)
		}
	}
	// Appended in ID order of n: already sorted.

	order, err := topoSort(g.nodes, g.dependents)
	if err != nil {
		return nil, err
	}
	g.order = order
	return g, nil
}

func byID(a, b *Node) int {
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// validate checks names and references, so that building the graph
// cannot fail or panic.
func validate(b *manifest.Build) error {
	file := manifest.Pos{File: b.File}
	if len(b.Stages) == 0 {
		return manifest.Errorf(file, "build has no stages")
	}
	seen := map[string]*manifest.Stage{}
	var names []string
	for i, s := range b.Stages {
		switch {
		case s == nil:
			return manifest.Errorf(file, "stage %d is missing", i)
		case s.Name == "":
			return manifest.Errorf(s.Pos, "stage %d has no name", i)
		case strings.Contains(s.Name, "/"):
			return manifest.Errorf(s.Pos, "stage name %q contains a slash", s.Name)
		case seen[s.Name] != nil:
			return manifest.Errorf(s.Pos, "duplicate stage %q%s", s.Name, firstAt(seen[s.Name].Pos))
		case s.From == "":
			return manifest.Errorf(s.Pos, "stage %q has no from", s.Name)
		}
		seen[s.Name] = s
		names = append(names, s.Name)
	}
	unknown := func(pos manifest.Pos, what, name string) error {
		return manifest.Errorf(pos, "unknown %s %q: stages are %s", what, name, strings.Join(names, ", "))
	}
	if b.Target != "" && seen[b.Target] == nil {
		return unknown(file, "target stage", b.Target)
	}
	for _, s := range b.Stages {
		if s.From == s.Name {
			return manifest.Errorf(s.Pos, "stage %q is built from itself (to use the image %q, rename the stage)", s.Name, s.From)
		}
		for i, st := range s.Steps {
			if st == nil {
				return manifest.Errorf(s.Pos, "stage %q: step %d is missing", s.Name, i)
			}
			for _, from := range stepFroms(st) {
				if from == s.Name {
					return manifest.Errorf(st.Pos, "step %q copies from its own stage %q", st.Name, s.Name)
				}
				if seen[from] == nil {
					return unknown(st.Pos, "stage", from)
				}
			}
		}
		if err := validateServices(s, seen, unknown); err != nil {
			return err
		}
		tests := map[string]*manifest.Test{}
		for i, t := range s.Tests {
			switch {
			case t == nil:
				return manifest.Errorf(s.Pos, "stage %q: test %d is missing", s.Name, i)
			case t.Name == "":
				return manifest.Errorf(t.Pos, "stage %q: test %d has no name", s.Name, i)
			case tests[t.Name] != nil:
				return manifest.Errorf(t.Pos, "duplicate test %q in stage %q%s", t.Name, s.Name, firstAt(tests[t.Name].Pos))
			}
			tests[t.Name] = t
		}
	}
	return nil
}

func firstAt(p manifest.Pos) string {
	if s := p.String(); s != "" {
		return " (first at " + s + ")"
	}
	return ""
}

// stageDepsOf returns, for every stage, the stages it uses: its from,
// then those its copies come from, in written order, without duplicates.
func stageDepsOf(b *manifest.Build) map[string][]string {
	deps := map[string][]string{}
	for _, s := range b.Stages {
		var d []string
		if b.StageByName(s.From) != nil {
			d = append(d, s.From)
		}
		for _, st := range s.Steps {
			for _, from := range stepFroms(st) {
				if !slices.Contains(d, from) {
					d = append(d, from)
				}
			}
		}
		deps[s.Name] = d
	}
	return deps
}

// stepFroms returns the stages a step reads besides its parent: a copy's
// from, and a run's bind mounts from stages.
func stepFroms(st *manifest.Step) []string {
	var out []string
	if c := st.Copy; st.Kind == manifest.StepCopy && c != nil && c.From != "" {
		out = append(out, c.From)
	}
	if st.Kind == manifest.StepRun {
		for _, m := range st.Mounts {
			if m.Type == manifest.MountBind && m.From != "" {
				out = append(out, m.From)
			}
		}
	}
	return out
}

// checkCycles returns an error naming a cycle between stages, if any: the
// shortest one, starting at the stage written first.
func checkCycles(b *manifest.Build, deps map[string][]string) error {
	index := map[string]int64{}
	for i, s := range b.Stages {
		index[s.Name] = int64(i)
	}
	sg := simple.NewDirectedGraph()
	for i := range b.Stages {
		sg.AddNode(simple.Node(i))
	}
	for _, s := range b.Stages {
		for _, d := range deps[s.Name] {
			// No self edges (gonum panics on them): validate rejects them.
			sg.SetEdge(sg.NewEdge(simple.Node(index[s.Name]), simple.Node(index[d])))
		}
	}
	if _, err := topo.Sort(sg); err == nil {
		return nil
	}
	var best []int64
	for _, c := range topo.DirectedCyclesIn(sg) {
		c = c[:len(c)-1] // the first node is repeated at the end
		ids := make([]int64, len(c))
		start := 0
		for i, n := range c {
			ids[i] = n.ID()
			if ids[i] < ids[start] {
				start = i
			}
		}
		ids = append(ids[start:], ids[:start]...)
		if best == nil || len(ids) < len(best) || len(ids) == len(best) && slices.Compare(ids, best) < 0 {
			best = ids
		}
	}
	if best == nil {
		return errors.New("compile build graph: stages have a cycle that could not be found")
	}
	path := make([]string, 0, len(best)+1)
	for _, id := range best {
		path = append(path, b.Stages[id].Name)
	}
	path = append(path, path[0])
	return &manifest.Error{Pos: b.Stages[best[0]].Pos, Msg: "cycle between stages", Err: &CycleError{Stages: path}}
}

// topoSort is Kahn's algorithm, taking the lowest ready ID first.
func topoSort(nodes []*Node, dependents [][]*Node) ([]*Node, error) {
	waiting := make([]int, len(nodes))
	ready := &idHeap{}
	for _, n := range nodes {
		waiting[n.ID] = len(n.Deps)
		if len(n.Deps) == 0 {
			heap.Push(ready, n)
		}
	}
	order := make([]*Node, 0, len(nodes))
	for ready.Len() > 0 {
		n := heap.Pop(ready).(*Node)
		order = append(order, n)
		for _, d := range dependents[n.ID] {
			if waiting[d.ID]--; waiting[d.ID] == 0 {
				heap.Push(ready, d)
			}
		}
	}
	if len(order) != len(nodes) {
		return nil, errors.New("compile build graph: nodes have a cycle")
	}
	return order, nil
}

type idHeap []*Node

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i].ID < h[j].ID }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(*Node)) }
func (h *idHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}

var _ graph.Node = gnode{}
