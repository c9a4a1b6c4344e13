package dag

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestDraw(t *testing.T) {
	draws := []struct {
		golden string
		draw   func(*Graph) ([]byte, error)
	}{
		{"multistage.dot", (*Graph).DOT},
		{"multistage.mmd", func(g *Graph) ([]byte, error) { return []byte(g.Mermaid()), nil }},
		{"multistage.json", (*Graph).JSON},
	}
	for _, d := range draws {
		t.Run(d.golden, func(t *testing.T) {
			var outs [][]byte
			for range 3 {
				g, err := Compile(multiStage())
				if err != nil {
					t.Fatal(err)
				}
				b, err := d.draw(g)
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, b)
			}
			for _, b := range outs[1:] {
				if !bytes.Equal(b, outs[0]) {
					t.Fatalf("output differs between compiles:\n%s\n---\n%s", outs[0], b)
				}
			}
			checkGolden(t, d.golden, outs[0])
		})
	}
}

func TestJSONShape(t *testing.T) {
	g, err := Compile(multiStage())
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Nodes []struct {
			ID    int64
			Key   string
			Deps  []string
			Stage string
		}
		Target string
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Target != "final/2" {
		t.Errorf("target = %q, want final/2", got.Target)
	}
	for i, n := range got.Nodes {
		if n.ID != int64(i) || g.Node(n.Key) == nil || g.Node(n.Key).ID != n.ID {
			t.Errorf("node %d: id %d key %q does not match the graph", i, n.ID, n.Key)
		}
		if n.Deps == nil {
			t.Errorf("node %q: deps is null, want a list", n.Key)
		}
	}
}
