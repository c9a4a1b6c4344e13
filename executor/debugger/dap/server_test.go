package dap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	godap "github.com/google/go-dap"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/manifest"
)

// load compiles a launch's manifest as kiln dap does, without a store.
func load(ctx context.Context, args LaunchArgs) (*dag.Graph, error) {
	b, err := manifest.Load(ctx, args.Manifest, manifest.Options{Context: args.Context})
	if err != nil {
		return nil, err
	}
	return dag.Compile(b)
}

// noBuild fails the test: the requests it sends start no build.
func noBuild(t *testing.T) func(context.Context, LaunchArgs, func(fsm.Observer) fsm.Observer, io.Writer) error {
	return func(context.Context, LaunchArgs, func(fsm.Observer) fsm.Observer, io.Writer) error {
		t.Error("a build started")
		return errors.New("no build here")
	}
}

// exchange sends reqs to a session, then ends its input, and returns the
// responses, in order, by request.
func exchange(t *testing.T, reqs ...godap.RequestMessage) []godap.ResponseMessage {
	t.Helper()
	var in, out bytes.Buffer
	for i, r := range reqs {
		r.GetRequest().Seq = i + 1
		r.GetRequest().Type = "request"
		if err := godap.WriteProtocolMessage(&in, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := Serve(t.Context(), &in, &out, Options{Load: load, Build: noBuild(t)}); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var resps []godap.ResponseMessage
	br := bufio.NewReader(&out)
	for {
		m, err := godap.ReadProtocolMessage(br)
		if errors.Is(err, io.EOF) {
			return resps
		}
		if err != nil {
			t.Fatalf("reading kiln dap's answers: %v", err)
		}
		if r, ok := m.(godap.ResponseMessage); ok {
			resps = append(resps, r)
		}
	}
}

func launch(t *testing.T, args LaunchArgs) *godap.LaunchRequest {
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return &godap.LaunchRequest{Request: godap.Request{Command: "launch"}, Arguments: raw}
}

// write writes files (path → content) under dir.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	if err := os.CopyFS(dir, fsys); err != nil {
		t.Fatal(err)
	}
}

// TestBreakpointsVerified: a breakpoint is verified on the first line of
// a step or test the build runs, of the manifest or of a module, and on
// a use: line; not elsewhere, and not on a step that only sets the
// image's config (CMD, ENV, LABEL…), which the build never stops at.
func TestBreakpointsVerified(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"app.yml": `from: scratch
env: {A: b}
steps:
  - run: echo one
  - use: ./mod
tests:
  - name: t
    run: "true"
`,
		"mod/module.yml": "steps:\n  - run: echo in module\n",
		// The config-only instructions are steps of the graph that are
		// never stopped at; a WORKDIR makes its directory, and is.
		"Dockerfile": "FROM scratch\nRUN echo\nENV A=b\nLABEL k=v\nEXPOSE 80\nUSER 1\nCMD [\"sh\"]\nWORKDIR /w\nENTRYPOINT [\"sh\"]\nSTOPSIGNAL 9\n",
	})
	app, mod, df := filepath.Join(dir, "app.yml"), filepath.Join(dir, "mod", "module.yml"), filepath.Join(dir, "Dockerfile")
	for _, tc := range []struct {
		name     string
		manifest string
		file     string
		lines    []int
		want     []bool
	}{
		{"manifest", app, app, []int{1, 2, 4, 5, 7, 8, 99}, []bool{false, false, true, true, true, false, false}},
		{"module", app, mod, []int{1, 2}, []bool{false, true}},
		{"another file", app, filepath.Join(dir, "other.yml"), []int{4}, []bool{false}},
		{"Dockerfile", df, df, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []bool{false, true, false, false, false, false, false, true, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := godap.SetBreakpointsArguments{Source: godap.Source{Path: tc.file}}
			for _, l := range tc.lines {
				args.Breakpoints = append(args.Breakpoints, godap.SourceBreakpoint{Line: l})
			}
			resps := exchange(t, launch(t, LaunchArgs{Manifest: tc.manifest}),
				&godap.SetBreakpointsRequest{Request: godap.Request{Command: "setBreakpoints"}, Arguments: args})
			if len(resps) != 2 {
				t.Fatalf("%d responses, want 2", len(resps))
			}
			sb, ok := resps[1].(*godap.SetBreakpointsResponse)
			if !ok {
				t.Fatalf("setBreakpoints answered %#v", resps[1])
			}
			var got []bool
			for i, b := range sb.Body.Breakpoints {
				got = append(got, b.Verified)
				if b.Line != tc.lines[i] || !b.Verified && !strings.Contains(b.Message, "no step starts at line") && !strings.Contains(b.Message, "only sets the image's config") {
					t.Errorf("breakpoint %d: %+v", i, b)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("verified (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequestErrors: what kiln dap cannot do is an error response that
// says why.
func TestRequestErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"app.yml": "from: scratch\nsteps:\n  - run: echo {{ nope }}\n", "ok.yml": "from: scratch\nsteps:\n  - run: echo\n"})
	for _, tc := range []struct {
		name string
		req  godap.RequestMessage
		want string
	}{
		{"launch without a manifest", launch(t, LaunchArgs{}), `launch needs "manifest"`},
		{"launch of a bad manifest", launch(t, LaunchArgs{Manifest: filepath.Join(dir, "app.yml")}), "app.yml:3"},
		{"continue while running", &godap.ContinueRequest{Request: godap.Request{Command: "continue"}}, "the build is not stopped"},
		{"evaluate while running", &godap.EvaluateRequest{Request: godap.Request{Command: "evaluate"}, Arguments: godap.EvaluateArguments{Expression: "ls"}}, "the build is not stopped"},
		{"restartFrame while running", &godap.RestartFrameRequest{Request: godap.Request{Command: "restartFrame"}}, "the build is not stopped"},
		{"an unsupported request", &godap.StepBackRequest{Request: godap.Request{Command: "stepBack"}}, "does not support the stepBack request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resps := exchange(t, tc.req)
			if len(resps) != 1 {
				t.Fatalf("%d responses, want 1", len(resps))
			}
			r := resps[0].GetResponse()
			if r.Success || !strings.Contains(r.Message, tc.want) {
				t.Errorf("answered success=%v %q, want a failure saying %q", r.Success, r.Message, tc.want)
			}
		})
	}
	// A second launch in a session is refused.
	ok := launch(t, LaunchArgs{Manifest: filepath.Join(dir, "ok.yml")})
	again := launch(t, LaunchArgs{Manifest: filepath.Join(dir, "ok.yml")})
	resps := exchange(t, ok, again)
	if len(resps) != 2 || !resps[0].GetResponse().Success || resps[1].GetResponse().Success {
		t.Errorf("two launches: want the first to succeed and the second to fail, got %d responses", len(resps))
	}
}
