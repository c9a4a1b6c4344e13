package dag

import (
	"testing"
)

// TestMerge puts two compiles of the multi-stage build side by side: keys
// and stage names get their part's prefix, IDs stay dense, edges stay in
// their part, and the drawing is the golden one.
func TestMerge(t *testing.T) {
	var parts []Part
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		g, err := Compile(multiStage())
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, Part{Prefix: p, Graph: g, Label: func(n *Node) string { return "[" + p + "] " + n.Name }})
	}
	m := Merge(parts)
	n := len(parts[0].Graph.nodes)
	if len(m.nodes) != 2*n {
		t.Fatalf("merged %d nodes, want %d", len(m.nodes), 2*n)
	}
	for i, mn := range m.nodes {
		if mn.ID != int64(i) {
			t.Errorf("node %d has ID %d", i, mn.ID)
		}
		orig := parts[i/n].Graph.nodes[i%n]
		if want := parts[i/n].Prefix + " " + orig.Key; mn.Key != want || m.Node(want) != mn {
			t.Errorf("node %d is keyed %q, want %q", i, mn.Key, want)
		}
		for j, d := range mn.Deps {
			if d != m.nodes[int64(i/n*n)+orig.Deps[j].ID] {
				t.Errorf("node %s depends on %s, not on its own part's copy of %s", mn.Key, d.Key, orig.Deps[j].Key)
			}
		}
	}
	if want := "linux/amd64 " + parts[0].Graph.Target().Key; m.Target().Key != want {
		t.Errorf("the merged target is %s, want %s", m.Target().Key, want)
	}
	checkGolden(t, "merged.mmd", []byte(m.Mermaid()))
}
