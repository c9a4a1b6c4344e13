package dag

import (
	"github.com/kiln-build/kiln/manifest"
	"gonum.org/v1/gonum/graph/simple"
)

// Kind says what a node does.
type Kind string

const (
	// KindBase is a stage's FROM of an image (or scratch). A stage FROM
	// another stage has no base node: its first step depends on that
	// stage's last node.
	KindBase Kind = "base"
	// KindStep is one step of a stage.
	KindStep Kind = "step"
	// KindTest is a test of a stage, a branch off its last node.
	KindTest Kind = "test"
	// KindService is a service instance: a container started before the
	// tests that need it and stopped after the last of them. Tests
	// depend on it; it depends on its image's stage, when it has one.
	KindService Kind = "service"
)

// Node is one vertex of the graph. Nodes belong to their Graph: treat
// them as read-only.
type Node struct {
	// ID is dense, 0..n-1, in the order the stages are written and, in a
	// stage, base node, steps, then tests.
	ID int64
	// Key is unique and stable: "<stage>/base", "<stage>/<index>" (the
	// 0-based step index), "<stage>/test/<name>", or for a service
	// "<stage>/test/<name>/service/<name>" (shared:
	// "<stage>/service/<name>").
	Key string
	// Name is what the user wrote: the step's Name, "test: <name>" or
	// "from: <ref>".
	Name  string
	Kind  Kind
	Stage *manifest.Stage
	Step  *manifest.Step // KindStep
	Test  *manifest.Test // KindTest
	// Service is the service a KindService node starts; its Test, when
	// not shared, is the one test it serves.
	Service *manifest.Service
	Index   int // the step's index in its stage (KindStep), -1 otherwise
	// Parent is the node whose filesystem this one builds on: the
	// previous step, the stage's base node, or (FROM another stage) the
	// last node of that stage. It is nil for a base node.
	Parent *Node
	// Deps are every node this one waits for: Parent and, for a copy
	// from another stage or a run's bind mount from one, that stage's
	// last node; sorted by ID, without duplicates.
	Deps []*Node
}

// Graph is the compiled, validated and immutable graph of a build. Its
// methods are safe for concurrent use.
type Graph struct {
	g          *simple.DirectedGraph // of gnode, edges dep → dependent; for drawing
	nodes      []*Node               // by ID
	order      []*Node               // topological, ties broken by ID
	keys       map[string]*Node
	dependents [][]*Node           // by ID, sorted by ID
	last       map[string]*Node    // by stage name
	stageDeps  map[string][]string // the stages a stage uses (from, copy.from), in written order
	target     string              // the target stage's name
}

// gnode is a Node as gonum sees it.
type gnode struct{ n *Node }

func (n gnode) ID() int64 { return n.n.ID }

// Nodes returns all the nodes in a deterministic topological order:
// dependencies first and, among nodes that are ready together, the lowest
// ID first.
func (g *Graph) Nodes() []*Node {
	return append([]*Node(nil), g.order...)
}

// Node returns the node with the given key, or nil.
func (g *Graph) Node(key string) *Node {
	return g.keys[key]
}

// Dependents returns the nodes that have n in their Deps, sorted by ID.
func (g *Graph) Dependents(n *Node) []*Node {
	if n == nil || n.ID < 0 || n.ID >= int64(len(g.nodes)) || g.nodes[n.ID] != n {
		return nil
	}
	return append([]*Node(nil), g.dependents[n.ID]...)
}

// Last returns the last node of a stage: its last step, or its base node
// when it has no steps, or for a stage FROM another stage without steps,
// that stage's Last. It returns nil for an unknown stage.
func (g *Graph) Last(stage string) *Node {
	return g.last[stage]
}

// Target returns the last node of the build's target stage.
func (g *Graph) Target() *Node {
	return g.last[g.target]
}

// Needed returns the nodes the target needs, in the order of Nodes: the
// target's ancestors, the target itself, and the tests of every stage
// the target uses, since tests gate the build. Stages the target does not
// use, and their tests, are left out.
func (g *Graph) Needed() []*Node {
	stages := map[string]bool{}
	var use func(string)
	use = func(s string) {
		if stages[s] {
			return
		}
		stages[s] = true
		for _, d := range g.stageDeps[s] {
			use(d)
		}
	}
	use(g.target)

	need := make([]bool, len(g.nodes))
	var mark func(*Node)
	mark = func(n *Node) {
		if need[n.ID] {
			return
		}
		need[n.ID] = true
		for _, d := range n.Deps {
			mark(d)
		}
	}
	mark(g.Target())
	for _, n := range g.nodes {
		if n.Kind == KindTest && stages[n.Stage.Name] {
			mark(n)
		}
	}

	var out []*Node
	for _, n := range g.order {
		if need[n.ID] {
			out = append(out, n)
		}
	}
	return out
}
