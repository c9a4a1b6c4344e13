package dag_test

import (
	"fmt"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/manifest"
)

func ExampleCompile() {
	b := &manifest.Build{
		Target: "app",
		Stages: []*manifest.Stage{{
			Name: "build",
			From: "golang:1.26",
			Steps: []*manifest.Step{
				{Kind: manifest.StepRun, Name: "run: go build -o /out/app"},
			},
		}, {
			Name: "app",
			From: "scratch",
			Steps: []*manifest.Step{
				{Kind: manifest.StepCopy, Name: "copy: build:/out/app -> /app", Copy: &manifest.Copy{From: "build", Src: "/out/app", Dst: "/app"}},
			},
			Tests: []*manifest.Test{{Name: "runs", Run: manifest.Command{Exec: []string{"/app", "-version"}}}},
		}},
	}
	g, err := dag.Compile(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range g.Nodes() {
		fmt.Printf("%-14s %s\n", n.Key, n.Name)
	}
	fmt.Println("target:", g.Target().Key)
	// Output:
	// build/base     from: golang:1.26
	// build/0        run: go build -o /out/app
	// app/base       from: scratch
	// app/0          copy: build:/out/app -> /app
	// app/test/runs  test: runs
	// target: app/0
}
