package history

import (
	"context"
	"fmt"
	"testing"

	"github.com/kiln-build/kiln/executor/buildctx"
)

// BenchmarkWrite writes the record of a build that copies a context of
// 5,000 files (scripts/bench/cases/copy5k), whose files the record lists.
func BenchmarkWrite(b *testing.B) {
	files := make([]buildctx.File, 5000)
	for i := range files {
		files[i] = buildctx.File{Path: fmt.Sprintf("files/d%02d/f%04d.txt", i/100, i), Type: "file", Mode: 0o644,
			Digest: fmt.Sprintf("sha256:%064x", i)}
	}
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		r := &Record{Manifest: "kiln.yml", Status: Succeeded, Nodes: []Node{{Key: "main/0", Name: "copy: . -> /ctx/", Kind: "step",
			Inputs: &Inputs{Kind: "copy", Sources: []Source{{Source: ".", Digest: "sha256:00", Files: files}}}}}}
		if err := s.Write(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
