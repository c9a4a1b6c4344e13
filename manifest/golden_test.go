package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testHost makes host.* the same on every machine.
var testHost = &Host{Arch: "amd64", OS: "linux", CPUs: 4}

// testEnv is the environment the tests see.
func testEnv(name string) string {
	return map[string]string{"HTTP_PROXY": "http://proxy:3128", "TOKEN": "s3cret", "HOME": "/root"}[name]
}

// caseOptions are the options of the golden cases that need some; values
// file names are relative to the case's directory.
var caseOptions = map[string]Options{
	"travis": {Set: []string{"dependencies=[requests, flask]", "project=myapp"}},
	"values": {Values: []string{"one.yml", "two.yml"}, Set: []string{"d=from-set"}},
	"set": {Set: []string{
		"app.name=web", "app.version=3.10", "app.port=8080",
		"pkgs=[curl, jq]", "helm={a, b}", "debug=true", "quiet=false",
	}},
	"env":                {EnvVars: []string{"TOKEN"}},
	"invalid/env-denied": {EnvVars: []string{"TOKEN"}},
	"invalid/bad-target": {Target: "nope"},
	"invalid/set-bad":    {Set: []string{"x"}},
}

func caseOpts(dir, name string) Options {
	o := caseOptions[name]
	o.Host = testHost
	o.Getenv = testEnv
	vs := make([]string, len(o.Values))
	for i, v := range o.Values {
		vs[i] = filepath.Join(dir, v)
	}
	o.Values = vs
	return o
}

func cases(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if de.IsDir() && de.Name() != "invalid" && de.Name() != "dockerfile" && de.Name() != "dockerfile-invalid" && de.Name() != "fuzz" && de.Name() != "jinja2" && de.Name() != "examples" { // fuzz: go test's fuzz corpus
			names = append(names, de.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	return names
}

func TestCaseOptionsAreUsed(t *testing.T) {
	for name := range caseOptions {
		if _, err := os.Stat(filepath.Join("testdata", name, "app.yml")); err != nil {
			t.Errorf("caseOptions[%q]: %v", name, err)
		}
	}
}

// TestLoadGolden loads testdata/<case>/app.yml and compares the IR, as
// JSON, with testdata/<case>/want.json.
func TestLoadGolden(t *testing.T) {
	for _, name := range cases(t, "testdata") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			b, err := Load(context.Background(), filepath.Join(dir, "app.yml"), caseOpts(dir, name))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			if b.Context != abs {
				t.Errorf("Context = %q, want %q", b.Context, abs)
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

// TestLoadInvalid loads testdata/invalid/<case>/app.yml and compares the
// error with the one line of testdata/invalid/<case>/want.txt.
func TestLoadInvalid(t *testing.T) {
	for _, name := range cases(t, filepath.Join("testdata", "invalid")) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "invalid", name)
			_, err := Load(context.Background(), filepath.Join(dir, "app.yml"), caseOpts(dir, "invalid/"+name))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the error has more than one line: %q", err)
			}
			var me *Error
			if !errors.As(err, &me) && name != "bad-target" && name != "set-bad" {
				t.Errorf("the error is a %T, want a *manifest.Error", err)
			}
			golden(t, filepath.Join(dir, "want.txt"), err.Error()+"\n")
		})
	}
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
	}
}

func cmpSorted() cmp.Option {
	return cmp.Transformer("sort", func(in []string) []string {
		out := append([]string(nil), in...)
		sort.Strings(out)
		return out
	})
}
