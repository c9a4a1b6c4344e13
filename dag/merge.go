package dag

import (
	"github.com/kiln-build/kiln/manifest"
	"gonum.org/v1/gonum/graph/simple"
)

// Part is one graph of a build made of several, as for several
// platforms: Prefix goes before each of its node keys and stage names
// ("linux/arm64 main/1"), and Label, when set, gives a node's name.
type Part struct {
	Prefix string
	Graph  *Graph
	Label  func(*Node) string
}

// Merge returns the graphs of parts side by side as one graph, for
// drawing (DOT, DOTOutcomes, Mermaid with a subgraph per part's stage,
// JSON): node keys and stage names get their part's Prefix and a space,
// IDs are renumbered in the order of parts, and the target is the first
// part's.
func Merge(parts []Part) *Graph {
	m := &Graph{g: simple.NewDirectedGraph(), keys: map[string]*Node{}, last: map[string]*Node{}, stageDeps: map[string][]string{}}
	for i, p := range parts {
		pre := p.Prefix + " "
		stages := map[*manifest.Stage]*manifest.Stage{}
		copies := map[*Node]*Node{}
		for _, n := range p.Graph.nodes {
			c := *n
			c.ID = int64(len(m.nodes))
			c.Key = pre + n.Key
			if p.Label != nil {
				c.Name = p.Label(n)
			}
			if stages[n.Stage] == nil {
				s := *n.Stage
				s.Name = pre + s.Name
				stages[n.Stage] = &s
			}
			c.Stage = stages[n.Stage]
			copies[n] = &c
			m.nodes = append(m.nodes, &c)
			m.keys[c.Key] = &c
			m.g.AddNode(gnode{&c})
		}
		for _, n := range p.Graph.nodes {
			c := copies[n]
			c.Parent = copies[n.Parent]
			c.Deps = make([]*Node, len(n.Deps))
			for j, d := range n.Deps {
				c.Deps[j] = copies[d]
				m.g.SetEdge(m.g.NewEdge(gnode{copies[d]}, gnode{c}))
			}
		}
		for _, n := range p.Graph.order {
			m.order = append(m.order, copies[n])
		}
		for s, n := range p.Graph.last {
			m.last[pre+s] = copies[n]
		}
		for s, ds := range p.Graph.stageDeps {
			for _, d := range ds {
				m.stageDeps[pre+s] = append(m.stageDeps[pre+s], pre+d)
			}
		}
		if i == 0 {
			m.target = pre + p.Graph.target
		}
	}
	m.dependents = make([][]*Node, len(m.nodes))
	for _, n := range m.nodes {
		for _, d := range n.Deps {
			m.dependents[d.ID] = append(m.dependents[d.ID], n)
		}
	}
	return m
}
