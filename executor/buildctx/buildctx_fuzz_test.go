package buildctx

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzIgnoreFile reads the fuzz input as a context's .dockerignore: opening
// the context, resolving, digesting and copying from it give a result or an
// error, never a panic, and digests are deterministic. Run it long with:
//
//	go test -run '^$' -fuzz '^FuzzIgnoreFile$' -fuzztime 10m ./buildctx/
func FuzzIgnoreFile(f *testing.F) {
	for _, seed := range []string{
		"",
		"*.log\n",
		"# comment\nbuild/\n!build/keep.txt\n",
		"**/*.tmp\n!**/important.tmp\n",
		"src/*/gen\n",
		"*\n!src\n",
		"[a-\n",
		"../outside\n/abs\n\\!literal\n",
	} {
		f.Add([]byte(seed))
	}
	tree := []node{
		{Name: "a.txt", Data: "a"},
		{Name: "app.log", Data: "log"},
		{Name: "build/out.bin", Data: "bin"},
		{Name: "build/keep.txt", Data: "keep"},
		{Name: "src/main/gen/x.go", Data: "package x"},
		{Name: "src/main/main.go", Data: "package main"},
		{Name: "src/important.tmp", Data: "tmp"},
		{Name: "link", Link: "a.txt"},
		{Name: "out", Link: "../../etc/passwd"},
		{Name: "!weird", Data: "w"},
	}
	f.Fuzz(func(t *testing.T, ignore []byte) {
		dir := t.TempDir()
		makeTree(t, dir, tree...)
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), ignore, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Open(dir)
		if err != nil {
			return // a bad pattern is an error, not a crash
		}
		ctx := context.Background()
		for _, src := range []string{".", "*", "src/*", "build", "**"} {
			_, _ = c.Resolve(src)
		}
		d1, err1 := c.Digest(ctx, ".")
		d2, err2 := c.Digest(ctx, ".")
		if (err1 == nil) != (err2 == nil) || d1 != d2 {
			t.Fatalf("two digests of one context differ: %v, %v and %v, %v", d1, err1, d2, err2)
		}
		if err1 != nil {
			return
		}
		root := t.TempDir()
		if err := c.Copy(ctx, ".", root, "/ctx", CopyOptions{UID: os.Geteuid(), GID: os.Getegid()}); err != nil {
			t.Fatalf("copy of a context that digests: %v", err)
		}
	})
}
