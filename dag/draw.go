package dag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/manifest"

	"gonum.org/v1/gonum/graph/encoding"
	"gonum.org/v1/gonum/graph/encoding/dot"
)

// shape returns the DOT shape of a node kind.
func shape(k Kind) string {
	switch k {
	case KindBase:
		return "box3d"
	case KindTest:
		return "note"
	case KindService:
		return "cylinder"
	}
	return "box"
}

// DOTID names a node in DOT by its key. It quotes the key itself, so that
// gonum never reads one as an HTML string.
func (n gnode) DOTID() string { return strconv.Quote(n.n.Key) }

// Attributes labels a node with its Name and shapes it by its Kind.
func (n gnode) Attributes() []encoding.Attribute {
	return []encoding.Attribute{
		{Key: "label", Value: strconv.Quote(n.n.Name)},
		{Key: "shape", Value: shape(n.n.Kind)},
	}
}

// DOT returns the graph in Graphviz's DOT language, as
// "strict digraph build {…}": nodes are named by key, labelled with their
// Name and shaped by kind (base: box3d, step: box, test: note, service:
// cylinder), and edges
// go from a dependency to its dependent. The output is deterministic.
func (g *Graph) DOT() ([]byte, error) {
	b, err := dot.Marshal(g.g, "build", "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal build graph as dot: %w", err)
	}
	return append(b, '\n'), nil
}

// Mermaid returns the graph as a Mermaid "flowchart TD": a subgraph per
// stage, nodes n<ID> labelled with their Name (base: stadium, step:
// rectangle, test: hexagon, service: cylinder) and edges from a dependency to its dependent.
// The output is deterministic.
func (g *Graph) Mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TD\n")
	// A stage's nodes have consecutive IDs.
	var stage *manifest.Stage
	stages := 0
	for _, n := range g.nodes {
		if n.Stage != stage {
			if stage != nil {
				sb.WriteString("  end\n")
			}
			stage = n.Stage
			fmt.Fprintf(&sb, "  subgraph s%d [\"%s\"]\n", stages, mermaidEscape(stage.Name))
			stages++
		}
		l, r := "[", "]"
		switch n.Kind {
		case KindBase:
			l, r = "([", "])"
		case KindTest:
			l, r = "{{", "}}"
		case KindService:
			l, r = "[(", ")]"
		}
		fmt.Fprintf(&sb, "    n%d%s\"%s\"%s\n", n.ID, l, mermaidEscape(n.Name), r)
	}
	if stage != nil {
		sb.WriteString("  end\n")
	}
	for _, n := range g.nodes {
		for _, d := range n.Deps {
			fmt.Fprintf(&sb, "  n%d --> n%d\n", d.ID, n.ID)
		}
	}
	return sb.String()
}

// mermaidEscape makes s safe in a quoted Mermaid label, with entity codes
// for the characters Mermaid (or the HTML it renders to) would read.
func mermaidEscape(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch r {
		case '#':
			sb.WriteString("#35;")
		case '"':
			sb.WriteString("#quot;")
		case '<':
			sb.WriteString("#lt;")
		case '>':
			sb.WriteString("#gt;")
		case '\n', '\r':
			sb.WriteByte(' ')
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// jsonGraph is the JSON form of a graph.
type jsonGraph struct {
	Nodes  []jsonNode `json:"nodes"`
	Target string     `json:"target"`
}

type jsonNode struct {
	ID    int64    `json:"id"`
	Key   string   `json:"key"`
	Name  string   `json:"name"`
	Kind  Kind     `json:"kind"`
	Stage string   `json:"stage"`
	Deps  []string `json:"deps"`
}

// JSON returns the graph as JSON: {"nodes": [{"id", "key", "name",
// "kind", "stage", "deps": [keys]}], "target": key}, with the nodes in
// ID order (nodes[i].id is i) and deps sorted by ID.
func (g *Graph) JSON() ([]byte, error) {
	jg := jsonGraph{Nodes: make([]jsonNode, 0, len(g.nodes)), Target: g.Target().Key}
	for _, n := range g.nodes {
		deps := make([]string, 0, len(n.Deps))
		for _, d := range n.Deps {
			deps = append(deps, d.Key)
		}
		jg.Nodes = append(jg.Nodes, jsonNode{ID: n.ID, Key: n.Key, Name: n.Name, Kind: n.Kind, Stage: n.Stage.Name, Deps: deps})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(jg); err != nil {
		return nil, fmt.Errorf("marshal build graph as json: %w", err)
	}
	return buf.Bytes(), nil
}
