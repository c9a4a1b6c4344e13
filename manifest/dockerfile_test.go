package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeBases are the base images the Dockerfile golden cases see.
func fakeBase(_ context.Context, ref string) (*ImageConfig, error) {
	switch ref {
	case "busybox", "busybox:latest", "alpine:3.19":
		return &ImageConfig{Env: []KV{{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}}, nil
	case "golang:1.22":
		return nil, errors.New("must not be resolved: the stage is not used")
	case "onbuild-base":
		return &ImageConfig{
			Env:     []KV{{"PATH", "/bin"}, {"BASE_ENV", "from-base"}},
			OnBuild: []string{"RUN echo $BASE_ENV", "ENV TRIGGERED=1"},
		}, nil
	}
	return nil, fmt.Errorf("unknown test image %q", ref)
}

// dfCaseOptions are the options of the Dockerfile cases that need some.
var dfCaseOptions = map[string]Options{
	"buildargs":  {BuildArgs: []string{"FROMCLI=cli", "HTTP_PROXY", "IGNORED=1"}},
	"multistage": {Target: ""},
}

func dfOpts(name string) Options {
	o := dfCaseOptions[name]
	o.Getenv = testEnv
	o.ResolveBase = fakeBase
	return o
}

// TestLoadDockerfileGolden loads testdata/dockerfile/<case>/Dockerfile and
// compares the IR, as JSON, with want.json beside it.
func TestLoadDockerfileGolden(t *testing.T) {
	for _, name := range dfCases(t, filepath.Join("testdata", "dockerfile")) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "dockerfile", name)
			b, err := Load(context.Background(), filepath.Join(dir, "Dockerfile"), dfOpts(name))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			b.Context = "CONTEXT"
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(b); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "want.json"), buf.String())
		})
	}
}

// TestLoadDockerfileInvalid loads testdata/dockerfile-invalid/<case> and
// compares the error with want.txt: every error is an *Error with a line,
// except for a file without instructions.
func TestLoadDockerfileInvalid(t *testing.T) {
	for _, name := range dfCases(t, filepath.Join("testdata", "dockerfile-invalid")) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "dockerfile-invalid", name)
			_, err := LoadDockerfile(context.Background(), filepath.Join(dir, "Dockerfile"), dfOpts(name))
			if err == nil {
				t.Fatal("LoadDockerfile succeeded, want an error")
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Errorf("the error is a %T, want a *manifest.Error", err)
			} else if me.Pos.Line == 0 && name != "empty" {
				t.Errorf("the error names no line: %v", err)
			}
			golden(t, filepath.Join(dir, "want.txt"), err.Error()+"\n")
		})
	}
}

func dfCases(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if de.IsDir() {
			names = append(names, de.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	return names
}

func TestLoadDockerfileTarget(t *testing.T) {
	dir := filepath.Join("testdata", "dockerfile", "multistage")
	tests := []struct {
		target, want, err string
	}{
		{"", "3", ""},
		{"SECOND", "second", ""},
		{"builder", "builder", ""},
		{"nope", "", `--target "nope": no stage has that name (stages: builder, second, unused)`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			o := dfOpts("multistage")
			o.Target = tt.target
			b, err := LoadDockerfile(context.Background(), filepath.Join(dir, "Dockerfile"), o)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Target != tt.want {
				t.Errorf("Target = %q, want %q", b.Target, tt.want)
			}
		})
	}
}

func TestLoadDispatch(t *testing.T) {
	dir := t.TempDir()
	df := "FROM busybox\nRUN true\n"
	for _, name := range []string{"Dockerfile", "Containerfile", "app.Dockerfile", "x.dockerfile", "custom"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		o := Options{}
		if name == "custom" {
			o.Frontend = "dockerfile"
		}
		b, err := Load(context.Background(), p, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b.Stages) != 1 || b.Stages[0].From != "busybox" {
			t.Errorf("%s: stages = %+v", name, b.Stages)
		}
	}
	if _, err := Load(context.Background(), filepath.Join(dir, "custom"), Options{Frontend: "nope"}); err == nil {
		t.Error("an unknown frontend was accepted")
	}
	// Find falls back to Dockerfile, then Containerfile.
	d2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(d2, "Containerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Find(d2)
	if err != nil || filepath.Base(got) != "Containerfile" {
		t.Errorf("Find = %q, %v; want Containerfile", got, err)
	}
}

func TestExposedPorts(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"80", []string{"80/tcp"}, false},
		{"53/UDP", []string{"53/udp"}, false},
		{"8000-8002/tcp", []string{"8000/tcp", "8001/tcp", "8002/tcp"}, false},
		{"x", nil, true},
		{"80/foo", nil, true},
		{"9-1", nil, true},
	}
	for _, tt := range tests {
		got, err := exposedPorts(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("exposedPorts(%q) err = %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("exposedPorts(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}
