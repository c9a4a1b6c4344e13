package dag

import (
	"fmt"
	"strconv"
	"time"

	"gonum.org/v1/gonum/graph/encoding"
	"gonum.org/v1/gonum/graph/encoding/dot"
	"gonum.org/v1/gonum/graph/simple"
)

// Outcome is how a node went in a build, for drawing.
type Outcome string

// The outcomes DOTOutcomes colours.
const (
	OutcomeCached Outcome = "cached"  // a cache hit (or nothing to run)
	OutcomeRan    Outcome = "ran"     // ran and succeeded
	OutcomeFailed Outcome = "failed"  // ran and failed
	OutcomeNotRun Outcome = "not run" // cancelled, never reached, or not needed
)

// NodeOutcome is one node's Outcome and how long it took.
type NodeOutcome struct {
	Outcome  Outcome
	Duration time.Duration
}

// fill is the fill colour of each outcome.
var fill = map[Outcome]string{
	OutcomeCached: "#cfe2ff", // blue
	OutcomeRan:    "#c7f0c2", // green
	OutcomeFailed: "#f7b9b9", // red
	OutcomeNotRun: "#eeeeee", // grey
}

// outcomeNode is a node drawn with its outcome.
type outcomeNode struct {
	gnode
	o NodeOutcome
}

// Attributes labels a node with its Name, outcome and duration, shapes
// it by its Kind and fills it by its outcome.
func (n outcomeNode) Attributes() []encoding.Attribute {
	label := n.n.Name + "\n" + string(n.o.Outcome)
	if n.o.Outcome == OutcomeRan || n.o.Outcome == OutcomeFailed {
		label += " " + n.o.Duration.Round(time.Millisecond).String()
	}
	style := `"filled"`
	if n.o.Outcome == OutcomeNotRun {
		style = `"filled,dashed"`
	}
	return []encoding.Attribute{
		{Key: "label", Value: strconv.Quote(label)},
		{Key: "shape", Value: shape(n.n.Kind)},
		{Key: "style", Value: style},
		{Key: "fillcolor", Value: strconv.Quote(fill[n.o.Outcome])},
	}
}

// DOTOutcomes draws the graph as DOT does, with each node coloured by how
// it went in a build (outcomes, by node key; a node without one is
// OutcomeNotRun) and labelled with its outcome and, for nodes that ran,
// their duration. The output is deterministic.
func (g *Graph) DOTOutcomes(outcomes map[string]NodeOutcome) ([]byte, error) {
	sg := simple.NewDirectedGraph()
	nodes := make([]outcomeNode, len(g.nodes))
	for i, n := range g.nodes {
		o, ok := outcomes[n.Key]
		if !ok || fill[o.Outcome] == "" {
			o = NodeOutcome{Outcome: OutcomeNotRun}
		}
		nodes[i] = outcomeNode{gnode{n}, o}
		sg.AddNode(nodes[i])
	}
	for _, n := range g.nodes {
		for _, d := range n.Deps {
			sg.SetEdge(sg.NewEdge(nodes[d.ID], nodes[n.ID]))
		}
	}
	b, err := dot.Marshal(sg, "build", "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal build graph as dot: %w", err)
	}
	return append(b, '\n'), nil
}
