package manifest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/internal/jinja"
)

func TestParseSet(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]any
		err  string
	}{
		{in: "a=b", want: map[string]any{"a": "b"}},
		{in: "a=", want: map[string]any{"a": ""}},
		{in: "a=b=c", want: map[string]any{"a": "b=c"}},
		{in: "a.b.c=d", want: map[string]any{"a": map[string]any{"b": map[string]any{"c": "d"}}}},
		{in: "n=8080", want: map[string]any{"n": 8080}},
		{in: "n=-1", want: map[string]any{"n": -1}},
		{in: "v=3.10", want: map[string]any{"v": "3.10"}},
		{in: "m=0644", want: map[string]any{"m": "0644"}},
		{in: "b=true", want: map[string]any{"b": true}},
		{in: "b=False", want: map[string]any{"b": "False"}},
		{in: "x=null", want: map[string]any{"x": "null"}},
		{in: "l=[curl, jq]", want: map[string]any{"l": []any{"curl", "jq"}}},
		{in: "l=[]", want: map[string]any{"l": []any{}}},
		{in: `l=[3.10, "4", 5, true]`, want: map[string]any{"l": []any{"3.10", "4", 5, true}}},
		{in: "l={curl, jq}", want: map[string]any{"l": []any{"curl", "jq"}}},
		{in: "m={a: 1, b: x}", want: map[string]any{"m": map[string]any{"a": 1, "b": "x"}}},
		{in: "m={a: [1, 2]}", want: map[string]any{"m": map[string]any{"a": []any{1, 2}}}},
		{in: "a", err: `--set "a": want key=value`},
		{in: "=b", err: `--set "=b": want key=value`},
		{in: "a..b=c", err: `--set "a..b=c": empty name in the key "a..b"`},
		{in: "l=[a, b", err: "--set l: reading the value as YAML flow syntax: yaml: line 1: did not find expected ',' or ']'"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSet(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("parseSet error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, plain(got)); diff != "" {
				t.Errorf("parseSet mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeValues(t *testing.T) {
	dst := map[string]any{"a": dict("y", 2, "x", 1), "b": []any{1}, "c": "keep"}
	src := dict("a", dict("z", dict("q", 1), "y", 3), "b", []any{2, 3})
	mergeValues(dst, src)
	want := map[string]any{"a": map[string]any{"x": 1, "y": 3, "z": map[string]any{"q": 1}}, "b": []any{2, 3}, "c": "keep"}
	if diff := cmp.Diff(want, plain(dst)); diff != "" {
		t.Errorf("mergeValues mismatch (-want +got):\n%s", diff)
	}
	// a key dst has keeps its place, a new one goes last (Python's update)
	if got, _ := json.Marshal(dst["a"]); string(got) != `{"y":3,"x":1,"z":{"q":1}}` {
		t.Errorf("merged map in the order %s, want y, x, z", got)
	}
	// src's maps are copied, not shared
	a, _ := src.Get("a")
	z, _ := a.(*jinja.Dict).Get("z")
	z.(*jinja.Dict).Set("q", 2)
	za, _ := dst["a"].(*jinja.Dict).Get("z")
	if got, _ := za.(*jinja.Dict).Get("q"); got != 1 {
		t.Errorf("dst changed with src: q = %v", got)
	}
}

// dict makes a *jinja.Dict of keys and values, in order.
func dict(kv ...any) *jinja.Dict {
	d := jinja.NewDict()
	for i := 0; i+1 < len(kv); i += 2 {
		d.Set(kv[i].(string), kv[i+1])
	}
	return d
}

// plain turns the Dicts in v into maps, for cmp.
func plain(v any) any {
	switch x := v.(type) {
	case *jinja.Dict:
		m := map[string]any{}
		for k, e := range x.All() {
			m[k.(string)] = plain(e)
		}
		return m
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = plain(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = plain(e)
		}
		return l
	}
	return v
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     documents
		err      string
	}{
		{name: "one", in: "from: x\n", want: documents{second: "from: x\n"}},
		{name: "one with leading separator", in: "---\nfrom: x", want: documents{second: "\nfrom: x"}},
		{name: "two", in: "vars: {}\n---\nfrom: x", want: documents{first: "vars: {}", second: "from: x", offset: 2}},
		{name: "two with leading separator and comment", in: "# c\n---\nvars: {}\n--- # build\nfrom: x", want: documents{first: "# c\n\nvars: {}", second: "from: x", offset: 4}},
		{name: "dashes inside a line", in: "a: ---\nb: x --- y", want: documents{second: "a: ---\nb: x --- y"}},
		{name: "three", in: "a: 1\n---\nb: 2\n---\nc: 3", err: "f.yml:4:1: a manifest has at most two YAML documents (template values, then the build)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := split("f.yml", tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("split error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(documents{})); diff != "" {
				t.Errorf("split mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{files: []string{"app.yml", "kiln.yml"}, want: "kiln.yml"},
		{files: []string{"app.yaml", "kiln.yaml"}, want: "kiln.yaml"},
		{files: []string{"app.yaml", "app.yml"}, want: "app.yml"},
		{files: []string{"app.yaml"}, want: "app.yaml"},
	} {
		t.Run(strings.Join(tc.files, ","), func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Find(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, tc.want); got != want {
				t.Errorf("Find = %q, want %q", got, want)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "kiln.yml"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Find(dir)
		want := "no manifest in " + dir + ": tried kiln.yml, kiln.yaml, app.yml, app.yaml, Dockerfile, Containerfile"
		if err == nil || err.Error() != want {
			t.Errorf("Find error = %v, want %q", err, want)
		}
	})
}

// TestLoadOptions checks the options' own errors and defaults.
func TestLoadOptions(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "app.yml")
	if err := os.WriteFile(manifest, []byte("from: scratch\nsteps:\n  - run: echo {{ v | default('none') }} {{ env.A | default('-') }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(dir, "values.yml")
	if err := os.WriteFile(values, []byte("- not a map\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(badYAML, []byte("a: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts Options
		step string
		err  string
	}{
		{name: "defaults", step: "run: echo none -"},
		{name: "env from Getenv", opts: Options{EnvVars: []string{"A"}, Getenv: func(string) string { return "x" }}, step: "run: echo none x"},
		{name: "env not allowed", opts: Options{Getenv: func(string) string { return "x" }}, step: "run: echo none -"},
		{name: "reserved host", opts: Options{Set: []string{"host.arch=x"}}, err: `template value "host": the name is reserved (kiln sets host.arch, host.os, host.cpus, target.os, target.arch, target.variant, and env.NAME for each --env-var NAME)`},
		{name: "reserved target", opts: Options{Set: []string{"target.arch=x"}}, err: `template value "target": the name is reserved (kiln sets host.arch, host.os, host.cpus, target.os, target.arch, target.variant, and env.NAME for each --env-var NAME)`},
		{name: "reserved env", opts: Options{Set: []string{"env=x"}}, err: `template value "env": the name is reserved (kiln sets host.arch, host.os, host.cpus, target.os, target.arch, target.variant, and env.NAME for each --env-var NAME)`},
		{name: "bad top-level name", opts: Options{Set: []string{"a-b=x"}}, err: `template value "a-b": a top-level name must be letters, digits and _`},
		{name: "bad env var", opts: Options{EnvVars: []string{"A-B"}}, err: `--env-var "A-B": not an environment variable name`},
		{name: "values not a map", opts: Options{Values: []string{values}}, err: values + ":1:1: a values file must be a map of names to values"},
		{name: "values bad YAML", opts: Options{Values: []string{badYAML}}, err: badYAML + ":2:1: invalid YAML: did not find expected node content"},
		{name: "values missing", opts: Options{Values: []string{filepath.Join(dir, "nope.yml")}}, err: "reading values: open " + filepath.Join(dir, "nope.yml") + ": no such file or directory"},
		{name: "context", opts: Options{Context: "."}, step: "run: echo none -"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Load(context.Background(), manifest, tc.opts)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Load error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := b.Stages[0].Steps[0].Name; got != tc.step {
				t.Errorf("step = %q, want %q", got, tc.step)
			}
			wantCtx, _ := filepath.Abs(dir)
			if tc.opts.Context != "" {
				wantCtx, _ = filepath.Abs(tc.opts.Context)
			}
			if b.Context != wantCtx {
				t.Errorf("Context = %q, want %q", b.Context, wantCtx)
			}
			h := plain(b.Values["host"]).(map[string]any)
			if h["os"] != "linux" || h["arch"] == "" || h["cpus"].(int) < 1 {
				t.Errorf("host = %v", h)
			}
		})
	}
	t.Run("missing manifest", func(t *testing.T) {
		_, err := Load(context.Background(), filepath.Join(dir, "nope.yml"), Options{})
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Load error = %v, want os.ErrNotExist", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Load(ctx, manifest, Options{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Load error = %v, want context.Canceled", err)
		}
	})
}

func TestRender(t *testing.T) {
	path := filepath.Join("testdata", "travis", "app.yml")
	got, err := Render(context.Background(), path, caseOpts(filepath.Dir(path), "travis"))
	if err != nil {
		t.Fatal(err)
	}
	want := `language: python
install:
  
  - pip install requests
  
  - pip install flask
  
script:
  - pylint myapp tests/
  - nosetests --with-coverage --cover-package myapp
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Render mismatch (-want +got):\n%s", diff)
	}
	// Render fails like Load
	if _, err := Render(context.Background(), path, Options{}); err == nil || !strings.Contains(err.Error(), `undefined variable "dependencies"`) {
		t.Errorf("Render without values: error = %v, want an undefined variable", err)
	}
}

func TestSchema(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatalf("Schema is not JSON: %v", err)
	}
	if got := s["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", got)
	}
	// every key the decoder knows is in the schema, and no other
	props := s["properties"].(map[string]any)
	var keys []string
	for k := range props {
		keys = append(keys, k)
	}
	if diff := cmp.Diff(topKeys, keys, cmpSorted()); diff != "" {
		t.Errorf("schema properties mismatch (-want +got):\n%s", diff)
	}
	defs := s["$defs"].(map[string]any)
	var stage, image []string
	for k := range defs["stage"].(map[string]any)["properties"].(map[string]any) {
		stage = append(stage, k)
	}
	for k := range defs["image"].(map[string]any)["properties"].(map[string]any) {
		image = append(image, k)
	}
	if diff := cmp.Diff(stageKeys, stage, cmpSorted()); diff != "" {
		t.Errorf("schema stage properties mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(imageKeys, image, cmpSorted()); diff != "" {
		t.Errorf("schema image properties mismatch (-want +got):\n%s", diff)
	}
}

// TestLoadConfined: the files Load reads from the repository (the
// manifest, a Dockerfile stage, a module) are read inside the context or
// the manifest's directory and only if regular: a link leading out, or a
// FIFO, fails at once naming the file, never quoting the linked file.
// Links inside work, and --values files, which the user names, follow
// links anywhere but must be regular too.
func TestLoadConfined(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("SECRET: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := func(target string) func(string) error {
		return func(p string) error { return os.Symlink(target, p) }
	}
	fifo := func(p string) error { return syscall.Mkfifo(p, 0o644) }
	const main = "from: scratch\nsteps:\n  - run: echo\n"
	for _, tc := range []struct {
		name     string
		files    map[string]string
		special  string               // made by make
		make     func(p string) error // the special file
		manifest string               // loaded, relative to the context
		opts     Options              // Context and Values relative to the context
		want     string               // in the error; "" for success
	}{
		{name: "manifest link outside", special: "app.yml", make: link(secret), manifest: "app.yml", want: "app.yml is a symlink to a path outside"},
		{name: "manifest fifo", special: "app.yml", make: fifo, manifest: "app.yml", want: "app.yml is a named pipe"},
		{name: "manifest link inside", files: map[string]string{"real/app.yml": main}, special: "app.yml", make: link("real/app.yml"), manifest: "app.yml"},
		{name: "manifest link inside the context", files: map[string]string{"real/app.yml": main}, special: "sub/app.yml", make: link("../real/app.yml"),
			manifest: "sub/app.yml", opts: Options{Context: "."}},
		{name: "manifest link outside its directory", files: map[string]string{"real/app.yml": main}, special: "sub/app.yml", make: link("../real/app.yml"),
			manifest: "sub/app.yml", want: "app.yml is a symlink to a path outside"},
		{name: "Dockerfile link outside", special: "Dockerfile", make: link(secret), manifest: "Dockerfile", want: "Dockerfile is a symlink to a path outside"},
		{name: "Dockerfile fifo", special: "Dockerfile", make: fifo, manifest: "Dockerfile", want: "Dockerfile is a named pipe"},
		{name: "dockerfile stage link outside", files: map[string]string{"app.yml": "stages:\n  b: {dockerfile: df/Dockerfile}\n"},
			special: "df/Dockerfile", make: link(secret), manifest: "app.yml", want: "df/Dockerfile is a symlink to a path outside"},
		{name: "dockerfile stage fifo", files: map[string]string{"app.yml": "stages:\n  b: {dockerfile: df/Dockerfile}\n"},
			special: "df/Dockerfile", make: fifo, manifest: "app.yml", want: "df/Dockerfile is a named pipe"},
		{name: "dockerfile stage link inside", files: map[string]string{"app.yml": "stages:\n  b: {dockerfile: df/Dockerfile}\n", "real": "FROM scratch\n"},
			special: "df/Dockerfile", make: link("../real"), manifest: "app.yml"},
		{name: "module link outside", files: map[string]string{"app.yml": "from: scratch\nsteps:\n  - use: ./lib/x\n"},
			special: "lib/x/module.yml", make: link(secret), manifest: "app.yml", want: "module.yml is a symlink to a path outside"},
		{name: "module fifo", files: map[string]string{"app.yml": "from: scratch\nsteps:\n  - use: ./lib/x.yml\n"},
			special: "lib/x.yml", make: fifo, manifest: "app.yml", want: "x.yml is a named pipe"},
		{name: "module link inside", files: map[string]string{"app.yml": "from: scratch\nsteps:\n  - use: ./lib/x\n", "mods/x.yml": "steps:\n  - run: echo\n"},
			special: "lib/x/module.yml", make: link("../../mods/x.yml"), manifest: "app.yml"},
		{name: "values fifo", files: map[string]string{"app.yml": main}, special: "v.yml", make: fifo, manifest: "app.yml",
			opts: Options{Values: []string{"v.yml"}}, want: "v.yml is a named pipe"},
		{name: "values link outside", files: map[string]string{"app.yml": main, "v.yml": "a: 1\n"}, special: "w.yml", make: link(secret), manifest: "app.yml",
			opts: Options{Values: []string{"w.yml"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				writeFile(t, dir, name, data)
			}
			p := filepath.Join(dir, tc.special)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			opts := tc.opts
			if opts.Context != "" {
				opts.Context = filepath.Join(dir, opts.Context)
			}
			for i, v := range opts.Values {
				opts.Values[i] = filepath.Join(dir, v)
			}
			done := make(chan error, 1)
			go func() {
				_, err := Load(context.Background(), filepath.Join(dir, tc.manifest), opts)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Load still blocks after 5s")
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("Load: error = %v, want one saying %q without the file's content", err, tc.want)
			}
		})
	}
}
