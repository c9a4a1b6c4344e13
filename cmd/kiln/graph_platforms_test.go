package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/image/platform"
)

// TestGraphPlatforms: kiln graph --platform draws each platform's graph
// (DOT, Mermaid, JSON), every node keyed by the platform built for and
// named by the platform its stage runs on (a $BUILDPLATFORM stage is the
// host's in the foreign graph), and --after-build colours the nodes of a
// build for two platforms from its record.
func TestGraphPlatforms(t *testing.T) {
	root, foreign := multiRoot(t)
	host := platform.Host()
	plats := host.String() + "," + foreign.String()
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM --platform=$BUILDPLATFORM busybox AS build\nRUN echo hi > /hi\nFROM busybox\nCOPY --from=build /hi /hi\n"})
	df := filepath.Join(dir, "Dockerfile")

	var g struct {
		Nodes []struct{ Key, Name string }
	}
	if err := json.Unmarshal([]byte(mustKiln(t, root, "graph", "--platform", plats, "--format", "json", "-f", df, dir).stdout), &g); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, n := range g.Nodes {
		names[n.Key] = n.Name
	}
	for key, name := range map[string]string{
		foreign.String() + " build/0": "[" + host.String() + "] RUN echo hi > /hi",
		foreign.String() + " 1/0":     "[" + foreign.String() + "] COPY --from=build /hi /hi",
		host.String() + " 1/0":        "[" + host.String() + "] COPY --from=build /hi /hi",
	} {
		if names[key] != name {
			t.Errorf("graph --format json: node %q is named %q, want %q (all: %v)", key, names[key], name, names)
		}
	}
	if len(g.Nodes) != 2*4 {
		t.Errorf("graph --format json has %d nodes, want 4 per platform: %v", len(g.Nodes), names)
	}
	mermaid := mustKiln(t, root, "graph", "--platform", plats, "--format", "mermaid", "-f", df, dir).stdout
	if !strings.Contains(mermaid, `subgraph s3 ["`+foreign.String()+` 1"]`) || !strings.Contains(mermaid, `"[`+foreign.String()+`] COPY --from=build /hi /hi"`) {
		t.Errorf("graph --format mermaid lacks the foreign platform's stage and step:\n%s", mermaid)
	}

	mustKiln(t, root, "build", "--platform", plats, "-f", df, dir)
	dot := mustKiln(t, root, "graph", "--after-build", "-f", df, dir).stdout
	for _, want := range []string{`"` + foreign.String() + ` 1/0"`, `[` + foreign.String() + `] COPY --from=build /hi /hi\nran`} {
		if !strings.Contains(dot, want) {
			t.Errorf("graph --after-build lacks %q:\n%s", want, dot)
		}
	}
}
