package history

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/fsm"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, WithKeep(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Last(ctx, "/a.yml"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Last on an empty store: %v, want ErrNotFound", err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, m := range []string{"/a.yml", "/b.yml", "/a.yml", "/a.yml", "/b.yml"} {
		r := &Record{Time: base.Add(time.Duration(i) * time.Second), Manifest: m, Status: Succeeded, Duration: Duration(1500 * time.Millisecond),
			Nodes: []Node{{Key: "main/0", State: "done", CacheKey: strings.Repeat("a", 64)}}}
		if err := s.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.ID == "" {
			t.Fatal("Write gave the record no ID")
		}
	}
	rs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.Manifest+" "+r.Time.Format("05"))
	}
	// The oldest two were pruned; the rest are oldest first.
	if diff := cmp.Diff([]string{"/a.yml 07", "/a.yml 08", "/b.yml 09"}, got); diff != "" {
		t.Errorf("records after pruning (-want +got):\n%s", diff)
	}
	last, err := s.Last(ctx, "/a.yml")
	if err != nil {
		t.Fatal(err)
	}
	if last.Time.Second() != 8 || last.Duration != Duration(1500*time.Millisecond) || last.Nodes[0].CacheKey != strings.Repeat("a", 64) {
		t.Errorf("Last(/a.yml) = %+v", last)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 3 {
		t.Errorf("the store holds %d files, want 3 (no temporary file left)", len(ents))
	}
	if _, err := Open(dir, WithKeep(0)); err == nil {
		t.Error("WithKeep(0) was accepted")
	}
	if err := s.Write(ctx, &Record{ID: "../evil"}); err == nil {
		t.Error("a record ID with a slash was accepted")
	}
}

func TestTimer(t *testing.T) {
	tm := NewTimer()
	t0 := time.Unix(100, 0)
	tm.Event(fsm.Event{Time: t0, Node: "a", From: fsm.Pending, State: fsm.CheckingCache, Duration: time.Hour})
	tm.Event(fsm.Event{Time: t0.Add(time.Second), Node: "a", From: fsm.CheckingCache, State: fsm.Creating})
	tm.Event(fsm.Event{Time: t0.Add(3 * time.Second), Node: "a", From: fsm.Committing, State: fsm.Done})
	tm.Event(fsm.Event{Time: t0.Add(5 * time.Second), Node: "b", From: fsm.Pending, State: fsm.Cancelled, Duration: 5 * time.Second})
	if d := tm.Duration("a"); d != 3*time.Second {
		t.Errorf("a took %s, want 3s", d)
	}
	if d := tm.Duration("b"); d != 0 {
		t.Errorf("b, cancelled while pending, took %s, want 0", d)
	}
}

// rec makes a record of nodes for explanation tests.
func rec(id string, nodes ...Node) *Record {
	return &Record{ID: id, Manifest: "/app.yml", Nodes: nodes}
}

func base(digest string) Node {
	return Node{Key: "main/base", Name: "from: busybox", Kind: "base", State: "cached", CacheKey: "k-base-" + digest,
		Inputs: &Inputs{BaseRef: "busybox", BaseDigest: digest}}
}

func step(key, parentKey, cacheKey, state string, in Inputs) Node {
	in.Parent = parentKey
	parent := "main/base"
	if key == "main/1" {
		parent = "main/0"
	}
	return Node{Key: key, Name: key, Kind: "step", Parent: parent, State: state, CacheKey: cacheKey, Inputs: &in}
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestExplain(t *testing.T) {
	files := func(digest string) []Source {
		return []Source{{Source: "./src", Digest: "d-" + digest, Files: []buildctx.File{
			{Path: "src", Type: "dir"},
			{Path: "src/a.sh", Type: "file", Mode: 0o644, Digest: "sha256:a"},
			{Path: "src/b.sh", Type: "file", Mode: 0o644, Digest: digest},
		}}}
	}
	prev := rec("1",
		base("sha256:old"),
		step("main/0", "k-base-sha256:old", "k0", "done", Inputs{Kind: "run", Args: sh("echo hello"), Env: []string{"A=1", "B=2"}}),
		step("main/1", "k0", "k1", "done", Inputs{Kind: "copy", Args: []string{"", "./src", "/app", "", ""}, Digests: []string{"sha256:x"}, Sources: files("sha256:b")}),
	)
	tests := []struct {
		name string
		cur  *Record
		want []Explanation
	}{
		{
			name: "command",
			cur: rec("2", base("sha256:old"),
				step("main/0", "k-base-sha256:old", "k0b", "done", Inputs{Kind: "run", Args: sh("echo hi"), Env: []string{"A=1", "B=2"}}),
				step("main/1", "k0b", "k1b", "done", Inputs{Kind: "copy", Args: []string{"", "./src", "/app", "", ""}, Digests: []string{"sha256:x"}, Sources: files("sha256:b")}),
			),
			want: []Explanation{
				{Node: "main/0", Name: "main/0", Against: "1", Reasons: []Reason{{Input: "command", Old: "echo hello", New: "echo hi"}}},
				{Node: "main/1", Name: "main/1", Against: "1", Reasons: []Reason{{Input: "parent", Path: "main/0", New: "main/0"}}},
			},
		},
		{
			name: "file and env",
			cur: rec("2", base("sha256:old"),
				step("main/0", "k-base-sha256:old", "k0b", "done", Inputs{Kind: "run", Args: sh("echo hello"), Env: []string{"A=2", "C=3"}}),
				step("main/1", "k0", "k1b", "done", Inputs{Kind: "copy", Args: []string{"", "./src", "/app", "", ""}, Digests: []string{"sha256:y"}, Sources: files("sha256:B")}),
			),
			want: []Explanation{
				{Node: "main/0", Name: "main/0", Against: "1", Reasons: []Reason{
					{Input: "env", Path: "A", Old: "1", New: "2"}, {Input: "env", Path: "C", New: "3"}, {Input: "env", Path: "B", Old: "2"}}},
				{Node: "main/1", Name: "main/1", Against: "1", Reasons: []Reason{{Input: "file", Path: "src/b.sh", Old: "sha256:b", New: "sha256:B"}}},
			},
		},
		{
			name: "base image",
			cur: rec("2", base("sha256:new"),
				step("main/0", "k-base-sha256:new", "k0b", "done", Inputs{Kind: "run", Args: sh("echo hello"), Env: []string{"A=1", "B=2"}}),
			),
			want: []Explanation{
				{Node: "main/0", Name: "main/0", Against: "1", Reasons: []Reason{{Input: "base", Path: "busybox", Old: "busybox@sha256:old", New: "busybox@sha256:new"}}},
			},
		},
		{
			name: "same key",
			cur: rec("2", base("sha256:old"),
				step("main/0", "k-base-sha256:old", "k0", "done", Inputs{Kind: "run", Args: sh("echo hello"), Env: []string{"A=1", "B=2"}}),
			),
			want: []Explanation{
				{Node: "main/0", Name: "main/0", Against: "1", Reasons: []Reason{{Input: "same-key", New: "the same key as in build 1, where it was done: the cache no longer holds it, or --no-cache was given"}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain(prev, tt.cur, func(n *Node) bool { return n.Kind != "base" && Missed(n.State) })
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Explain (-want +got):\n%s", diff)
			}
		})
	}
	// The same command with another mount.
	mp := rec("1", step("main/0", "kb", "k0", "done", Inputs{Kind: "run", Args: append(sh("make"), "\x00mounts", "cache\x00/a")}))
	mc := rec("2", step("main/0", "kb", "k0b", "done", Inputs{Kind: "run", Args: append(sh("make"), "\x00mounts", "cache\x00/b")}))
	es := Explain(mp, mc, func(n *Node) bool { return true })
	if diff := cmp.Diff([]Reason{{Input: "args", Path: "mounts", Old: "cache /a", New: "cache /b"}}, es[0].Reasons); diff != "" {
		t.Errorf("a changed mount (-want +got):\n%s", diff)
	}
	// With nothing to compare with, every miss is new.
	got := Explain(nil, prev, func(n *Node) bool { return n.Kind == "step" })
	if len(got) != 2 || got[0].Reasons[0].Input != "new" {
		t.Errorf("Explain against nothing: %+v", got)
	}
}

func TestExplainText(t *testing.T) {
	var b strings.Builder
	err := Write(&b, []Explanation{{Node: "main/0", Name: "run: echo hi", Reasons: []Reason{
		{Input: "command", Old: "echo hello", New: "echo hi"},
		{Input: "file", Path: "src/b.sh", Old: "sha256:" + strings.Repeat("1", 64), New: "sha256:" + strings.Repeat("2", 64)},
		{Input: "parent", Path: "main/1", New: "env: A=1", Because: []Reason{{Input: "env", Path: "A", Old: "0", New: "1"}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `main/0 run: echo hi
    the command changed:
      now: echo hi
      was: echo hello
    file src/b.sh changed: sha256:111111111111… → sha256:222222222222…
    its parent main/1 (env: A=1) changed:
        env A changed: "0" → "1"
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Write (-want +got):\n%s", diff)
	}
}

func TestClosest(t *testing.T) {
	mk := func(id string, keys ...string) *Record {
		r := &Record{ID: id}
		for i, k := range keys {
			r.Nodes = append(r.Nodes, Node{Key: string(rune('a' + i)), CacheKey: k})
		}
		return r
	}
	cur := mk("9", "k1", "k2", "k3")
	tests := []struct {
		name       string
		candidates []*Record
		want       string
	}{
		{"most keys", []*Record{mk("1", "k1", "k2", "x"), mk("2", "k1", "y", "z")}, "1"},
		{"newest of equals", []*Record{mk("1", "k1", "x"), mk("2", "k1", "y")}, "2"},
		{"not itself", []*Record{mk("1", "k1"), mk("9", "k1", "k2", "k3")}, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Closest(tt.candidates, cur); got == nil || got.ID != tt.want {
				t.Errorf("Closest = %v, want %s", got, tt.want)
			}
		})
	}
	if got := Closest(nil, cur); got != nil {
		t.Errorf("Closest of nothing = %v", got)
	}
}

func TestCommandText(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{sh(`echo "a b" > /x`), `echo "a b" > /x`},
		{[]string{"ls", "-l", "a b"}, `ls -l "a b"`},
		{[]string{"/bin/sh", "-c", "make", "\x00mounts", "cache\x00/root/.cache"}, "make"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := CommandText(tt.args); got != tt.want {
				t.Errorf("CommandText(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}
