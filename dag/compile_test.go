package dag

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kiln-build/kiln/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func at(line int) manifest.Pos { return manifest.Pos{File: "app.yml", Line: line, Col: 3} }

func run(cmd string, line int) *manifest.Step {
	return &manifest.Step{Kind: manifest.StepRun, Name: "run: " + cmd, Run: &manifest.Command{Shell: cmd}, Pos: at(line)}
}

func cp(from, src string, line int) *manifest.Step {
	name := "copy: " + src + " -> /"
	if from != "" {
		name = "copy: " + from + ":" + src + " -> /"
	}
	return &manifest.Step{Kind: manifest.StepCopy, Name: name, Copy: &manifest.Copy{From: from, Src: src, Dst: "/"}, Pos: at(line)}
}

func test(name string, line int) *manifest.Test {
	return &manifest.Test{Name: name, Run: manifest.Command{Shell: "true"}, Pos: at(line)}
}

// summary is what a test checks of a node.
type summary struct {
	Key, Name string
	Kind      Kind
	Stage     string
	Index     int
	Parent    string
	Deps      []string
	Deps2     []string // Dependents
}

func summarize(g *Graph, ns []*Node) []summary {
	var out []summary
	for _, n := range ns {
		s := summary{Key: n.Key, Name: n.Name, Kind: n.Kind, Stage: n.Stage.Name, Index: n.Index, Deps: keys(n.Deps), Deps2: keys(g.Dependents(n))}
		if n.Parent != nil {
			s.Parent = n.Parent.Key
		}
		out = append(out, s)
	}
	return out
}

func keys(ns []*Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Key)
	}
	return out
}

// singleStage is one stage with two steps and two tests.
func singleStage() *manifest.Build {
	return &manifest.Build{
		File: "app.yml", Target: "main",
		Stages: []*manifest.Stage{{
			Name: "main", From: "alpine:3.20", Pos: at(1),
			Steps: []*manifest.Step{run("apk add curl", 3), run("echo hi", 4)},
			Tests: []*manifest.Test{test("curl", 6), test("hello", 7)},
		}},
	}
}

// multiStage has a stage FROM another, copies between stages, a stage
// FROM a stage without steps, and a stage the target does not use.
func multiStage() *manifest.Build {
	return &manifest.Build{
		File: "app.yml", Target: "final",
		Stages: []*manifest.Stage{
			{Name: "deps", From: "golang:1.26", Pos: at(2),
				Steps: []*manifest.Step{cp("", "go.mod", 4), run("go mod download", 5)}},
			{Name: "build", From: "deps", Pos: at(7),
				Steps: []*manifest.Step{cp("", ".", 9), run(`go build -ldflags "-s" -o /app # <b>`, 10)},
				Tests: []*manifest.Test{test("vet", 12)}},
			{Name: "checked", From: "build", Pos: at(14),
				Tests: []*manifest.Test{test("unit", 16)}},
			{Name: "docs", From: "python:3", Pos: at(18),
				Steps: []*manifest.Step{run("mkdocs build", 20)},
				Tests: []*manifest.Test{test("links", 22)}},
			{Name: "final", From: "scratch", Pos: at(24),
				Steps: []*manifest.Step{cp("checked", "/app", 26), cp("deps", "/etc/ssl", 27), run("true", 28)},
				Tests: []*manifest.Test{test("smoke", 30)}},
		},
	}
}

// withServices has a test with two services of its own, one built by
// another stage, a second test with that service too (its own instance),
// and a test with a shared service.
func withServices() *manifest.Build {
	web := &manifest.Service{Name: "web", Image: "busybox", Pos: at(5)}
	cache := &manifest.Service{Name: "cache", Stage: "db", Pos: at(6)}
	log := &manifest.Service{Name: "log", Image: "busybox", Share: true, Pos: at(7)}
	ta, tb, tc := test("a", 9), test("b", 10), test("c", 11)
	ta.Services = []string{"web", "cache"}
	tb.Services = []string{"cache"}
	tc.Services = []string{"log"}
	return &manifest.Build{
		File: "app.yml", Target: "app",
		Stages: []*manifest.Stage{
			{Name: "db", From: "debian:12", Pos: at(1), Steps: []*manifest.Step{run("install redis", 2)}},
			{Name: "app", From: "busybox", Pos: at(3), Services: []*manifest.Service{web, cache, log}, Tests: []*manifest.Test{ta, tb, tc}},
		},
	}
}

// withStepServices has a run step with a service of its own, built by
// another stage, and a run step and a test sharing one service.
func withStepServices() *manifest.Build {
	cache := &manifest.Service{Name: "cache", Stage: "db", Pos: at(5)}
	log := &manifest.Service{Name: "log", Image: "busybox", Share: true, Pos: at(6)}
	migrate, seed := run("migrate", 7), run("seed", 8)
	migrate.Services, seed.Services = []string{"cache"}, []string{"log"}
	tc := test("c", 9)
	tc.Services = []string{"log"}
	return &manifest.Build{
		File: "app.yml", Target: "app",
		Stages: []*manifest.Stage{
			{Name: "db", From: "debian:12", Pos: at(1), Steps: []*manifest.Step{run("install redis", 2)}},
			{Name: "app", From: "busybox", Pos: at(3), Services: []*manifest.Service{cache, log}, Steps: []*manifest.Step{migrate, seed}, Tests: []*manifest.Test{tc}},
		},
	}
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name   string
		build  *manifest.Build
		nodes  []summary // by ID
		order  []string  // Nodes
		needed []string  // Needed
		target string
		last   map[string]string
	}{{
		name:  "single stage",
		build: singleStage(),
		nodes: []summary{
			{Key: "main/base", Name: "from: alpine:3.20", Kind: KindBase, Stage: "main", Index: -1, Deps2: []string{"main/0"}},
			{Key: "main/0", Name: "run: apk add curl", Kind: KindStep, Stage: "main", Index: 0, Parent: "main/base", Deps: []string{"main/base"}, Deps2: []string{"main/1"}},
			{Key: "main/1", Name: "run: echo hi", Kind: KindStep, Stage: "main", Index: 1, Parent: "main/0", Deps: []string{"main/0"}, Deps2: []string{"main/test/curl", "main/test/hello"}},
			{Key: "main/test/curl", Name: "test: curl", Kind: KindTest, Stage: "main", Index: -1, Parent: "main/1", Deps: []string{"main/1"}},
			{Key: "main/test/hello", Name: "test: hello", Kind: KindTest, Stage: "main", Index: -1, Parent: "main/1", Deps: []string{"main/1"}},
		},
		order:  []string{"main/base", "main/0", "main/1", "main/test/curl", "main/test/hello"},
		needed: []string{"main/base", "main/0", "main/1", "main/test/curl", "main/test/hello"},
		target: "main/1",
		last:   map[string]string{"main": "main/1", "nope": ""},
	}, {
		name:  "multi-stage",
		build: multiStage(),
		nodes: []summary{
			{Key: "deps/base", Name: "from: golang:1.26", Kind: KindBase, Stage: "deps", Index: -1, Deps2: []string{"deps/0"}},
			{Key: "deps/0", Name: "copy: go.mod -> /", Kind: KindStep, Stage: "deps", Index: 0, Parent: "deps/base", Deps: []string{"deps/base"}, Deps2: []string{"deps/1"}},
			{Key: "deps/1", Name: "run: go mod download", Kind: KindStep, Stage: "deps", Index: 1, Parent: "deps/0", Deps: []string{"deps/0"}, Deps2: []string{"build/0", "final/1"}},
			{Key: "build/0", Name: "copy: . -> /", Kind: KindStep, Stage: "build", Index: 0, Parent: "deps/1", Deps: []string{"deps/1"}, Deps2: []string{"build/1"}},
			{Key: "build/1", Name: `run: go build -ldflags "-s" -o /app # <b>`, Kind: KindStep, Stage: "build", Index: 1, Parent: "build/0", Deps: []string{"build/0"}, Deps2: []string{"build/test/vet", "checked/test/unit", "final/0"}},
			{Key: "build/test/vet", Name: "test: vet", Kind: KindTest, Stage: "build", Index: -1, Parent: "build/1", Deps: []string{"build/1"}},
			{Key: "checked/test/unit", Name: "test: unit", Kind: KindTest, Stage: "checked", Index: -1, Parent: "build/1", Deps: []string{"build/1"}},
			{Key: "docs/base", Name: "from: python:3", Kind: KindBase, Stage: "docs", Index: -1, Deps2: []string{"docs/0"}},
			{Key: "docs/0", Name: "run: mkdocs build", Kind: KindStep, Stage: "docs", Index: 0, Parent: "docs/base", Deps: []string{"docs/base"}, Deps2: []string{"docs/test/links"}},
			{Key: "docs/test/links", Name: "test: links", Kind: KindTest, Stage: "docs", Index: -1, Parent: "docs/0", Deps: []string{"docs/0"}},
			{Key: "final/base", Name: "from: scratch", Kind: KindBase, Stage: "final", Index: -1, Deps2: []string{"final/0"}},
			{Key: "final/0", Name: "copy: checked:/app -> /", Kind: KindStep, Stage: "final", Index: 0, Parent: "final/base", Deps: []string{"build/1", "final/base"}, Deps2: []string{"final/1"}},
			{Key: "final/1", Name: "copy: deps:/etc/ssl -> /", Kind: KindStep, Stage: "final", Index: 1, Parent: "final/0", Deps: []string{"deps/1", "final/0"}, Deps2: []string{"final/2"}},
			{Key: "final/2", Name: "run: true", Kind: KindStep, Stage: "final", Index: 2, Parent: "final/1", Deps: []string{"final/1"}, Deps2: []string{"final/test/smoke"}},
			{Key: "final/test/smoke", Name: "test: smoke", Kind: KindTest, Stage: "final", Index: -1, Parent: "final/2", Deps: []string{"final/2"}},
		},
		order: []string{
			"deps/base", "deps/0", "deps/1", "build/0", "build/1", "build/test/vet", "checked/test/unit",
			"docs/base", "docs/0", "docs/test/links", "final/base", "final/0", "final/1", "final/2", "final/test/smoke",
		},
		needed: []string{
			"deps/base", "deps/0", "deps/1", "build/0", "build/1", "build/test/vet", "checked/test/unit",
			"final/base", "final/0", "final/1", "final/2", "final/test/smoke",
		},
		target: "final/2",
		last:   map[string]string{"deps": "deps/1", "build": "build/1", "checked": "build/1", "docs": "docs/0", "final": "final/2"},
	}, {
		name: "stage from a later stage, default target",
		build: &manifest.Build{File: "app.yml", Stages: []*manifest.Stage{
			{Name: "app", From: "base", Pos: at(1), Steps: []*manifest.Step{run("make", 2)}, Tests: []*manifest.Test{test("t", 3)}},
			{Name: "base", From: "debian:12", Pos: at(4), Tests: []*manifest.Test{test("t", 5)}},
			{Name: "tools", From: "base", Pos: at(6), Steps: []*manifest.Step{run("apt-get install -y make", 7)}},
		}},
		nodes: []summary{
			{Key: "app/0", Name: "run: make", Kind: KindStep, Stage: "app", Index: 0, Parent: "base/base", Deps: []string{"base/base"}, Deps2: []string{"app/test/t"}},
			{Key: "app/test/t", Name: "test: t", Kind: KindTest, Stage: "app", Index: -1, Parent: "app/0", Deps: []string{"app/0"}},
			{Key: "base/base", Name: "from: debian:12", Kind: KindBase, Stage: "base", Index: -1, Deps2: []string{"app/0", "base/test/t", "tools/0"}},
			{Key: "base/test/t", Name: "test: t", Kind: KindTest, Stage: "base", Index: -1, Parent: "base/base", Deps: []string{"base/base"}},
			{Key: "tools/0", Name: "run: apt-get install -y make", Kind: KindStep, Stage: "tools", Index: 0, Parent: "base/base", Deps: []string{"base/base"}},
		},
		order:  []string{"base/base", "app/0", "app/test/t", "base/test/t", "tools/0"},
		needed: []string{"base/base", "base/test/t", "tools/0"},
		target: "tools/0",
		last:   map[string]string{"app": "app/0", "base": "base/base", "tools": "tools/0"},
	}, {
		name:  "services",
		build: withServices(),
		nodes: []summary{
			{Key: "db/base", Name: "from: debian:12", Kind: KindBase, Stage: "db", Index: -1, Deps2: []string{"db/0"}},
			{Key: "db/0", Name: "run: install redis", Kind: KindStep, Stage: "db", Index: 0, Parent: "db/base", Deps: []string{"db/base"}, Deps2: []string{"app/test/a/service/cache", "app/test/b/service/cache"}},
			{Key: "app/base", Name: "from: busybox", Kind: KindBase, Stage: "app", Index: -1, Deps2: []string{"app/test/a", "app/test/b", "app/test/c"}},
			{Key: "app/test/a", Name: "test: a", Kind: KindTest, Stage: "app", Index: -1, Parent: "app/base", Deps: []string{"app/base", "app/test/a/service/web", "app/test/a/service/cache"}},
			{Key: "app/test/b", Name: "test: b", Kind: KindTest, Stage: "app", Index: -1, Parent: "app/base", Deps: []string{"app/base", "app/test/b/service/cache"}},
			{Key: "app/test/c", Name: "test: c", Kind: KindTest, Stage: "app", Index: -1, Parent: "app/base", Deps: []string{"app/base", "app/service/log"}},
			{Key: "app/test/a/service/web", Name: "service: web (a)", Kind: KindService, Stage: "app", Index: -1, Deps2: []string{"app/test/a"}},
			{Key: "app/test/a/service/cache", Name: "service: cache (a)", Kind: KindService, Stage: "app", Index: -1, Deps: []string{"db/0"}, Deps2: []string{"app/test/a"}},
			{Key: "app/test/b/service/cache", Name: "service: cache (b)", Kind: KindService, Stage: "app", Index: -1, Deps: []string{"db/0"}, Deps2: []string{"app/test/b"}},
			{Key: "app/service/log", Name: "service: log", Kind: KindService, Stage: "app", Index: -1, Deps2: []string{"app/test/c"}},
		},
		order: []string{"db/base", "db/0", "app/base", "app/test/a/service/web", "app/test/a/service/cache", "app/test/a",
			"app/test/b/service/cache", "app/test/b", "app/service/log", "app/test/c"},
		needed: []string{"db/base", "db/0", "app/base", "app/test/a/service/web", "app/test/a/service/cache", "app/test/a",
			"app/test/b/service/cache", "app/test/b", "app/service/log", "app/test/c"},
		target: "app/base",
		last:   map[string]string{"db": "db/0", "app": "app/base"},
	}, {
		name:  "step services",
		build: withStepServices(),
		nodes: []summary{
			{Key: "db/base", Name: "from: debian:12", Kind: KindBase, Stage: "db", Index: -1, Deps2: []string{"db/0"}},
			{Key: "db/0", Name: "run: install redis", Kind: KindStep, Stage: "db", Index: 0, Parent: "db/base", Deps: []string{"db/base"}, Deps2: []string{"app/0/service/cache"}},
			{Key: "app/base", Name: "from: busybox", Kind: KindBase, Stage: "app", Index: -1, Deps2: []string{"app/0"}},
			{Key: "app/0", Name: "run: migrate", Kind: KindStep, Stage: "app", Index: 0, Parent: "app/base", Deps: []string{"app/base", "app/0/service/cache"}, Deps2: []string{"app/1"}},
			{Key: "app/1", Name: "run: seed", Kind: KindStep, Stage: "app", Index: 1, Parent: "app/0", Deps: []string{"app/0", "app/service/log"}, Deps2: []string{"app/test/c"}},
			{Key: "app/test/c", Name: "test: c", Kind: KindTest, Stage: "app", Index: -1, Parent: "app/1", Deps: []string{"app/1", "app/service/log"}},
			{Key: "app/0/service/cache", Name: "service: cache (run: migrate)", Kind: KindService, Stage: "app", Index: -1, Deps: []string{"db/0"}, Deps2: []string{"app/0"}},
			{Key: "app/service/log", Name: "service: log", Kind: KindService, Stage: "app", Index: -1, Deps2: []string{"app/1", "app/test/c"}},
		},
		order:  []string{"db/base", "db/0", "app/base", "app/0/service/cache", "app/0", "app/service/log", "app/1", "app/test/c"},
		needed: []string{"db/base", "db/0", "app/base", "app/0/service/cache", "app/0", "app/service/log", "app/1", "app/test/c"},
		target: "app/1",
		last:   map[string]string{"db": "db/0", "app": "app/1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Compile(tt.build)
			if err != nil {
				t.Fatal(err)
			}
			all := g.Nodes()
			for i, n := range all {
				if g.Node(n.Key) != n {
					t.Errorf("Node(%q) is not the node %d of Nodes", n.Key, i)
				}
			}
			byID := make([]*Node, len(all))
			for _, n := range all {
				if n.ID < 0 || n.ID >= int64(len(all)) || byID[n.ID] != nil {
					t.Fatalf("IDs are not dense: %d in %d nodes, or twice", n.ID, len(all))
				}
				byID[n.ID] = n
			}
			if diff := cmp.Diff(tt.nodes, summarize(g, byID)); diff != "" {
				t.Errorf("nodes by ID (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.order, keys(all)); diff != "" {
				t.Errorf("Nodes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.needed, keys(g.Needed())); diff != "" {
				t.Errorf("Needed (-want +got):\n%s", diff)
			}
			if got := g.Target().Key; got != tt.target {
				t.Errorf("Target = %q, want %q", got, tt.target)
			}
			for stage, want := range tt.last {
				got := ""
				if n := g.Last(stage); n != nil {
					got = n.Key
				}
				if got != want {
					t.Errorf("Last(%q) = %q, want %q", stage, got, want)
				}
			}
			if n := g.Node("nope/base"); n != nil {
				t.Errorf("Node(nope/base) = %v, want nil", n.Key)
			}
			if d := g.Dependents(&Node{ID: 0, Key: all[0].Key}); d != nil {
				t.Errorf("Dependents of a node of no graph = %v, want nil", keys(d))
			}
		})
	}
}

// TestNodesIsTopological checks the order against every node's deps, so
// the table above cannot hide a wrong order.
func TestNodesIsTopological(t *testing.T) {
	for _, b := range []*manifest.Build{singleStage(), multiStage()} {
		g, err := Compile(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range [][]*Node{g.Nodes(), g.Needed()} {
			pos := map[*Node]int{}
			for i, n := range ns {
				pos[n] = i
			}
			for _, n := range ns {
				for _, d := range n.Deps {
					if i, ok := pos[d]; !ok || i >= pos[n] {
						t.Errorf("%s: dep %s is not before it", n.Key, d.Key)
					}
				}
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	stage := func(name, from string, line int, steps ...*manifest.Step) *manifest.Stage {
		return &manifest.Stage{Name: name, From: from, Pos: at(line), Steps: steps}
	}
	build := func(stages ...*manifest.Stage) *manifest.Build {
		return &manifest.Build{File: "app.yml", Target: stages[len(stages)-1].Name, Stages: stages}
	}
	dupTests := singleStage()
	dupTests.Stages[0].Tests = append(dupTests.Stages[0].Tests, test("curl", 8))
	unknownTarget := singleStage()
	unknownTarget.Target = "prod"

	tests := []struct {
		name  string
		build *manifest.Build
		cycle []string // the *CycleError's Stages, if any
	}{
		{name: "nil build", build: nil},
		{name: "empty build", build: &manifest.Build{File: "app.yml"}},
		{name: "unknown copy stage", build: build(
			stage("a", "alpine", 1, run("true", 2)),
			stage("b", "alpine", 3, cp("c", "/x", 4)),
		)},
		{name: "unknown target", build: unknownTarget},
		{name: "cycle a b", build: build(
			stage("a", "b", 1, run("true", 2)),
			stage("b", "alpine", 3, cp("a", "/x", 4)),
		), cycle: []string{"a", "b", "a"}},
		{name: "cycle of three by from", build: build(
			stage("x", "alpine", 1),
			stage("c", "a", 2),
			stage("b", "c", 3),
			stage("a", "b", 4),
		), cycle: []string{"c", "a", "b", "c"}},
		{name: "shortest cycle", build: build(
			stage("a", "b", 1, cp("d", "/x", 2)),
			stage("b", "c", 3),
			stage("c", "a", 4),
			stage("d", "alpine", 5, cp("a", "/y", 6)),
		), cycle: []string{"a", "d", "a"}},
		{name: "from itself", build: build(stage("alpine", "alpine", 1, run("true", 2)))},
		{name: "copy from itself", build: build(stage("a", "alpine", 1, cp("a", "/x", 2)))},
		{name: "duplicate test", build: dupTests},
		{name: "duplicate stage", build: build(stage("a", "alpine", 1), stage("a", "alpine", 2))},
		{name: "stage without name", build: build(stage("", "alpine", 1))},
		{name: "stage name with slash", build: build(stage("a/test", "alpine", 1))},
		{name: "stage without from", build: build(stage("a", "", 1))},
		{name: "nil step", build: build(stage("a", "alpine", 1, nil))},
	}
	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Compile(tt.build)
			if err == nil {
				t.Fatalf("Compile = %v, want an error", g)
			}
			golden.WriteString(tt.name + ": " + err.Error() + "\n")
			var me *manifest.Error
			if tt.build != nil && !errors.As(err, &me) {
				t.Errorf("error %q (%T) is not a *manifest.Error", err, err)
			}
			var ce *CycleError
			if got := errors.As(err, &ce); got != (tt.cycle != nil) {
				t.Fatalf("error %q: is a *CycleError = %v, want %v", err, got, tt.cycle != nil)
			}
			if ce != nil {
				if diff := cmp.Diff(tt.cycle, ce.Stages); diff != "" {
					t.Errorf("cycle (-want +got):\n%s", diff)
				}
			}
		})
	}
	checkGolden(t, "errors.golden", []byte(golden.String()))
}

// TestCycleMessage pins the message of the example.
func TestCycleMessage(t *testing.T) {
	b := &manifest.Build{File: "app.yml", Target: "b", Stages: []*manifest.Stage{
		{Name: "a", From: "alpine", Pos: at(2), Steps: []*manifest.Step{cp("b", "/x", 3)}},
		{Name: "b", From: "a", Pos: at(5)},
	}}
	_, err := Compile(b)
	const want = "app.yml:2:3: cycle between stages: a → b → a"
	if err == nil || err.Error() != want {
		t.Errorf("Compile error = %v, want %q", err, want)
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
