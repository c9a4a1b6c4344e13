package debugger

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/manifest"
)

func TestBreakpoints(t *testing.T) {
	v := &executor.NodeView{Node: "main/2", Name: "run: make install", Pos: manifest.Pos{File: "/src/app.yml", Line: 7, Col: 5}}
	for _, tc := range []struct {
		spec string
		want bool
	}{
		{"7", true},
		{"8", false},
		{"app.yml:7", true},
		{"/src/app.yml:7", true},
		{"other.yml:7", false},
		{"main/2", true},
		{"main/3", false},
		{"make inst", true},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			b, err := parseBreak(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.matches(v); got != tc.want {
				t.Errorf("break %s matches = %v, want %v", tc.spec, got, tc.want)
			}
		})
	}
	// A module's step: written at line 3 of lib/user.yml, used at line 7
	// of app.yml.
	m := &executor.NodeView{Node: "main/1", Name: "user: run: adduser", Pos: manifest.Pos{File: "/src/lib/user.yml", Line: 3, Col: 5,
		Caller: &manifest.Pos{File: "/src/app.yml", Line: 7, Col: 5}}}
	for _, tc := range []struct {
		spec string
		want bool
	}{
		{"7", true},  // the use: line of the manifest
		{"3", false}, // a bare line is the manifest's, not the module's
		{"app.yml:7", true},
		{"user.yml:3", true},
		{"/src/lib/user.yml:3", true},
		{"user.yml:7", false},
		{"app.yml:3", false},
	} {
		t.Run("module/"+tc.spec, func(t *testing.T) {
			b, err := parseBreak(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.matches(m); got != tc.want {
				t.Errorf("break %s matches = %v, want %v", tc.spec, got, tc.want)
			}
		})
	}
	if _, err := parseBreak("0"); err == nil {
		t.Error("break 0 was accepted")
	}
}

// TestPrompt drives a stop through its commands.
func TestPrompt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.yml")
	if err := os.WriteFile(file, []byte("from: x\nsteps:\n  - run: a\n  - run: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := &executor.NodeView{Node: "main/1", Name: "run: b", Pos: manifest.Pos{File: file, Line: 4},
		Command: []string{"/bin/sh", "-c", "b"}, Env: []string{"A=1"}, CacheKey: "abc"}
	for _, tc := range []struct {
		name, script string
		want         executor.Action
		out          []string
	}{
		{"next", "env\nn\n", executor.Action{Kind: executor.Continue}, []string{"A=1\nworkdir: /\nuser: root\ncommand: b\n"}},
		{"list and break", "b 3\nl\nc\n", executor.Action{Kind: executor.Continue}, []string{"\n  *   3    - run: a\n", "=>    4    - run: b\n"}},
		{"edit", "edit echo fixed\n", executor.Action{Kind: executor.Edit, Command: "echo fixed"}, nil},
		{"retry before running", "retry\nskip\n", executor.Action{Kind: executor.Skip}, []string{"retry: the step has not run yet"}},
		{"quit", "q\n", executor.Action{Kind: executor.Abort}, nil},
		{"end of input", "", executor.Action{Kind: executor.Abort}, []string{"end of input"}},
		{"cache", "cache\nc\n", executor.Action{Kind: executor.Continue}, []string{"cache key abc\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d, err := New(Options{In: strings.NewReader(tc.script), Out: &out, Prompt: true})
			if err != nil {
				t.Fatal(err)
			}
			got := d.Before(context.Background(), v)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("action (-want +got):\n%s", diff)
			}
			if !strings.Contains(out.String(), "stopped at "+file+":4 (on entry)") {
				t.Errorf("no stop on entry in %q", out.String())
			}
			for _, w := range tc.out {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output %q: want %q", out.String(), w)
				}
			}
		})
	}
}

// TestListMarks: list marks a line where a breakpoint stops a step
// written there; in a module's file, a bare LINE (the manifest's) marks
// nothing.
func TestListMarks(t *testing.T) {
	dir := t.TempDir()
	app, mod := filepath.Join(dir, "app.yml"), filepath.Join(dir, "mod.yml")
	for _, f := range []string{app, mod} {
		if err := os.WriteFile(f, []byte("a\nb\nc\nd\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inApp := &executor.NodeView{Node: "main/0", Name: "run: a", Pos: manifest.Pos{File: app, Line: 2}}
	inMod := &executor.NodeView{Node: "main/1", Name: "run: b", Pos: manifest.Pos{File: mod, Line: 2, Caller: &manifest.Pos{File: app, Line: 4}}}
	for _, tc := range []struct {
		name string
		v    *executor.NodeView
		spec string
		want string // the marked lines
	}{
		{"bare line in the manifest", inApp, "3", "3"},
		{"file:line in the manifest", inApp, "app.yml:1", "1"},
		{"other file", inApp, "mod.yml:1", ""},
		{"bare line in a module", inMod, "3", ""},
		{"file:line in a module", inMod, "mod.yml:3", "3"},
		{"step name", inMod, "run: b", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d, err := New(Options{Out: &out, Breaks: []string{tc.spec}})
			if err != nil {
				t.Fatal(err)
			}
			if err := list(context.Background(), d, &stop{v: tc.v}, nil, ""); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(out.String(), "\n") {
				if len(l) > 2 && l[2] == '*' {
					got = append(got, strings.Fields(l[3:])[0])
				}
			}
			if diff := cmp.Diff(tc.want, strings.Join(got, ",")); diff != "" {
				t.Errorf("marked lines (-want +got):\n%s\n%s", diff, out.String())
			}
		})
	}
}

// TestInputBorrow: a borrowed reader ends when told, and leaves what it
// has not read to the prompt.
func TestInputBorrow(t *testing.T) {
	pr, pw := io.Pipe()
	in := newInput(pr)
	go func() { _, _ = pw.Write([]byte("first\n")) }()
	l, err := in.line()
	if err != nil || l != "first" {
		t.Fatalf("line() = %q, %v", l, err)
	}
	stop := make(chan struct{})
	r := in.borrow(stop)
	go func() { _, _ = pw.Write([]byte("to the shell\n")) }()
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "to the shell\n" {
		t.Fatalf("borrowed Read = %q, %v", buf[:n], err)
	}
	close(stop)
	if n, err := r.Read(buf); err != io.EOF {
		t.Fatalf("Read after stop = %d, %v; want EOF", n, err)
	}
	go func() { _, _ = pw.Write([]byte("to the prompt\n")); pw.Close() }()
	if l, err := in.line(); err != nil || l != "to the prompt" {
		t.Fatalf("line() = %q, %v", l, err)
	}
	if _, err := in.line(); err != io.EOF {
		t.Fatalf("line() at the end: %v, want EOF", err)
	}
}

// TestGateFocus: the focus follows a branch's steps, and is dropped
// where the branch forks, ends, fails, or goes on to a step that waits
// for another branch or that the build does not run.
func TestGateFocus(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.yml")
	src := `stages:
  a:
    from: scratch
    steps: [a0, a1]
  unused:
    from: a
    steps: [u0]
  c:
    from: scratch
    steps: [c0]
  t:
    from: scratch
    steps:
      - copy: {from: a, src: /x, dst: /x}
      - copy: {from: c, src: /x, dst: /y}
target: t
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := manifest.Load(context.Background(), file, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := dag.Compile(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, focus string
		ended       fsm.State
		done        []string // other nodes that have ended
		want        string
	}{
		{"the next step", "a/0", fsm.Done, nil, "a/1"},
		{"a cached step", "a/0", fsm.Cached, nil, "a/1"},
		{"a failure", "a/0", fsm.Failed, nil, ""},
		{"the next step is not built", "a/1", fsm.Done, nil, ""},
		{"the next step waits for another branch", "t/0", fsm.Done, nil, ""},
		{"the other branch has ended", "t/0", fsm.Done, []string{"c/0"}, "t/1"},
		{"the end", "t/1", fsm.Done, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gt := newGate()
			gt.wait(context.Background(), &executor.NodeView{Node: tc.focus, Graph: g})
			for _, d := range tc.done {
				gt.note(fsm.Event{Node: d, State: fsm.Done})
			}
			gt.resume(tc.focus, false)
			gt.note(fsm.Event{Node: tc.focus, State: tc.ended})
			if gt.focus != tc.want {
				t.Errorf("focus after %s %s = %q, want %q", tc.focus, tc.ended, gt.focus, tc.want)
			}
		})
	}
}

// TestExisted: a file is found in any layer, the top-most first; a
// layer's symlink out of it (here, absolute) is never followed on the
// host.
func TestExisted(t *testing.T) {
	host := t.TempDir()
	base, top := t.TempDir(), t.TempDir()
	for _, f := range []string{filepath.Join(host, "secret"), filepath.Join(base, "etc", "passwd")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(host, filepath.Join(top, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("etc", filepath.Join(base, "conf")); err != nil {
		t.Fatal(err)
	}
	type existCase struct {
		path string
		want bool
	}
	cases := []existCase{
		{"/etc/passwd", true},
		{"/etc/group", false},
		{"/conf/passwd", true}, // a symlink in its layer
		{"/out", true},         // the symlink itself
		{"/out/secret", false}, // on the host, not in a layer
		{"/", true},
	}
	// A whiteout (a 0/0 character device, which only root can make)
	// of /etc in the top layer hides the base's /etc/passwd.
	if err := unix.Mknod(filepath.Join(top, "etc"), unix.S_IFCHR, 0); err == nil {
		cases = append(cases[1:], existCase{"/etc/passwd", false}, existCase{"/etc", false})
	}
	roots := openRoots([]string{base, top})
	defer closeRoots(roots)
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			if got := existed(roots, tc.path); got != tc.want {
				t.Errorf("existed(%s) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}
