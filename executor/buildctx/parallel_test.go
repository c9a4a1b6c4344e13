package buildctx

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goStatement starts writers as plain goroutines (a copy outside any
// mount namespace of its own).
func goStatement(fn func()) error { go fn(); return nil }

// TestCopyParallel checks that a copy whose files are written by parallel
// writers (CopyOptions.Go) leaves exactly what a copy on one goroutine
// leaves: contents, modes, owners, times and hard links, also where a
// link in the destination makes two source directories one, and fails
// where the serial copy fails.
func TestCopyParallel(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	var nodes []node
	for i := range 400 {
		nodes = append(nodes, node{Name: fmt.Sprintf("d%d/f%03d", i%7, i), Data: strings.Repeat("x", i), Mode: fs.FileMode(0o600 + i%3*0o11)})
	}
	nodes = append(nodes,
		node{Name: "a/same", Data: "from a"},
		node{Name: "b/same", Data: "from b"},
		node{Name: "b/only-b", Data: "b"},
		node{Name: "d0/link", Link: "f000"},
		node{Name: "d1/dir-link", Link: "../d2"},
		node{Name: "setuid", Data: "s", Mode: fs.ModeSetuid | 0o755},
	)
	makeTree(t, src, nodes...)
	if err := os.Link(filepath.Join(src, "d3/f003"), filepath.Join(src, "d4/hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "d3/f003"), filepath.Join(src, "d5/hard")); err != nil {
		t.Fatal(err)
	}
	c, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Geteuid(), os.Getegid()
	mode := os.FileMode(0o640)
	for _, tc := range []struct {
		name    string
		root    []node
		opts    CopyOptions
		wantErr string
	}{
		{name: "plain"},
		{name: "mode", opts: CopyOptions{Mode: &mode}},
		// b is a link to a in the destination: a/same and b/same are one
		// target, written in walk order (b's last).
		{name: "aliased dirs", root: []node{{Name: "app/a/"}, {Name: "app/b", Link: "a"}}},
		{name: "a dir in the way", root: []node{{Name: "app/d6/f006/"}}, wantErr: "a file cannot replace it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]map[string]string
			for i, goFn := range []func(func()) error{nil, goStatement} {
				root := t.TempDir()
				makeTree(t, root, tc.root...)
				opts := tc.opts
				opts.UID, opts.GID, opts.Go = uid, gid, goFn
				err := c.Copy(ctx, ".", root, "/app/", opts)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("Copy (parallel %v): %v, want an error with %q", goFn != nil, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				got[i] = statTree(t, root)
				got[i]["app"] = "made now" // the destination, made by the copy, is dated when made
			}
			if diff := cmp.Diff(got[0], got[1]); diff != "" {
				t.Errorf("a parallel copy differs from a serial one (-serial +parallel):\n%s", diff)
			}
		})
	}
}

// statTree is listTree with each entry's owner, modification time and,
// for a file with other hard links, the first path of its inode.
func statTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := listTree(t, dir)
	first := map[uint64]string{}
	for _, rel := range slices.Sorted(maps.Keys(out)) {
		fi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[rel] += fmt.Sprintf(" %d:%d %d", st.Uid, st.Gid, fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if f, ok := first[st.Ino]; ok {
				out[rel] += " =" + f
			} else {
				first[st.Ino] = rel
			}
		}
	}
	return out
}
