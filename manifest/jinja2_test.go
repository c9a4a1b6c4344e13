package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// The differential suite: every case of testdata/jinja2/cases renders
// with kiln and with Python's Jinja2 (the reference, run by
// testdata/jinja2/render.py), and the outputs must be identical: the
// bytes for a template, the YAML meaning for a manifest. A case with an
// "error" section must fail in kiln with exactly that error, and either
// fail in Jinja2 too or be a construct kiln refuses ("... is not
// supported by kiln"): never a different output.
//
// A case file is a description, then sections "-- NAME --": values.yml
// (the values, optional), template (a template file) or manifest (a
// manifest's build document, rendered with values.yml as its vars:),
// error (optional), and any other file the template includes.

// jinjaCase is one case of the suite.
type jinjaCase struct {
	name     string
	files    map[string]string
	order    []string
	manifest bool
	err      string
}

func parseJinjaCase(name, data string) (*jinjaCase, error) {
	c := &jinjaCase{name: name, files: map[string]string{}}
	cur := ""
	for line := range strings.SplitAfterSeq(data, "\n") {
		t := strings.TrimRight(line, "\n")
		if strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") && len(t) > 6 {
			cur = t[3 : len(t)-3]
			if _, dup := c.files[cur]; dup {
				return nil, fmt.Errorf("%s: section %q twice", name, cur)
			}
			c.files[cur] = ""
			c.order = append(c.order, cur)
			continue
		}
		if cur != "" {
			c.files[cur] += line
		}
	}
	_, tpl := c.files["template"]
	_, c.manifest = c.files["manifest"]
	if tpl == c.manifest {
		return nil, fmt.Errorf("%s: want one template or manifest section", name)
	}
	if e, ok := c.files["error"]; ok {
		c.err = strings.TrimSpace(e)
		delete(c.files, "error")
	}
	return c, nil
}

func readJinjaCases(t testing.TB) []*jinjaCase {
	t.Helper()
	dir := filepath.Join("testdata", "jinja2", "cases")
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var cs []*jinjaCase
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseJinjaCase(strings.TrimSuffix(de.Name(), ".txt"), string(data))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// pyJSON writes the YAML node n as JSON for Python, keeping the order of
// maps and the type of every scalar (1.0 stays a float).
func pyJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case 0, yaml.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("{}")
			return nil
		}
		return pyJSON(b, n.Content[0])
	case yaml.AliasNode:
		return pyJSON(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			b.Write(k)
			b.WriteByte(':')
			if err := pyJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := pyJSON(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	if f, ok := v.(float64); ok {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("line %d: no JSON for %v", n.Line, f)
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		b.WriteString(s)
		return nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(j)
	return nil
}

// pyCase is what render.py reads for one case.
type pyCase struct {
	Name   string          `json:"name"`
	Dir    string          `json:"dir"`
	File   string          `json:"file"`
	Values json.RawMessage `json:"values"`
}

// pyResult is what render.py answers for one case.
type pyResult struct {
	Out   *string `json:"out"`
	Error string  `json:"error"`
}

// jinja2Reference renders every case with Python's Jinja2, in one
// process; it skips the test when python3-jinja2 is not installed.
func jinja2Reference(t *testing.T, cases []pyCase) map[string]pyResult {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import jinja2").Run(); err != nil {
		t.Skipf("the reference needs %s with Jinja2 (apt-get install python3-jinja2): %v", python, err)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "jinja2", "render.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render.py: %v\n%s", err, stderr.String())
	}
	res := map[string]pyResult{}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("reading render.py's answer: %v", err)
	}
	return res
}

// jinjaHost is host.* in the manifest cases, for kiln and Jinja2 alike.
const jinjaHost = `{"arch": "amd64", "cpus": 4, "os": "linux"}`

// setUp writes c's files under dir and returns what render.py needs.
func (c *jinjaCase) setUp(t *testing.T, dir string) pyCase {
	t.Helper()
	for name, data := range c.files {
		if name == "manifest" || name == "values.yml" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(c.files["values.yml"]), &n); err != nil {
		t.Fatalf("%s: values.yml: %v", c.name, err)
	}
	var values bytes.Buffer
	if err := pyJSON(&values, &n); err != nil {
		t.Fatalf("%s: values.yml: %v", c.name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "values.yml"), []byte(c.files["values.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	file := "template"
	if c.manifest {
		// the build document alone for Jinja2; app.yml for kiln, with the
		// values as the first document's vars
		file = "manifest.j2"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(c.files["manifest"]), 0o644); err != nil {
			t.Fatal(err)
		}
		var app strings.Builder
		if v := c.files["values.yml"]; v != "" {
			app.WriteString("---\nvars:\n")
			for l := range strings.Lines(v) {
				app.WriteString("  " + l)
			}
			app.WriteString("---\n")
		}
		app.WriteString(c.files["manifest"])
		if err := os.WriteFile(filepath.Join(dir, "app.yml"), []byte(app.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		v := strings.TrimSuffix(strings.TrimSpace(values.String()), "}")
		if v != "{" {
			v += ","
		}
		values.Reset()
		values.WriteString(v + `"host":` + jinjaHost + `,"env":{}}`)
	}
	return pyCase{Name: c.name, Dir: dir, File: file, Values: values.Bytes()}
}

// render renders c with kiln.
func (c *jinjaCase) render(dir string) (string, error) {
	if c.manifest {
		out, err := Render(context.Background(), filepath.Join(dir, "app.yml"), Options{Host: testHost, Getenv: testEnv})
		return string(out), err
	}
	values, err := readValues(filepath.Join(dir, "values.yml"))
	if err != nil {
		return "", err
	}
	vm := map[string]any{}
	mergeValues(vm, values)
	out, err := RenderFile(&Build{Context: dir, Values: vm}, "template")
	return string(out), err
}

func TestJinja2Differential(t *testing.T) {
	cases := readJinjaCases(t)
	if len(cases) < 80 {
		t.Errorf("%d cases, want at least 80", len(cases))
	}
	root := t.TempDir()
	var py []pyCase
	for _, c := range cases {
		dir := filepath.Join(root, c.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		py = append(py, c.setUp(t, dir))
	}
	ref := jinja2Reference(t, py)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, ok := ref[c.name]
			if !ok {
				t.Fatal("no answer from Jinja2")
			}
			dir := py[i].Dir
			got, err := c.render(dir)
			if c.err != "" {
				if err == nil {
					t.Fatalf("kiln rendered %q, want the error %q (Jinja2: %s)", got, c.err, want.describe())
				}
				msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
				if msg != c.err {
					t.Errorf("kiln's error:\n%s\nwant:\n%s", msg, c.err)
				}
				if want.Out != nil && !strings.Contains(c.err, "is not supported by kiln") {
					t.Errorf("Jinja2 renders this case (%q): an error must say the construct is not supported by kiln", *want.Out)
				}
				return
			}
			if want.Out == nil {
				t.Fatalf("Jinja2 failed: %s (add an error section if kiln must fail too)", want.Error)
			}
			if err != nil {
				t.Fatalf("kiln failed: %v\nJinja2 renders:\n%s", err, *want.Out)
			}
			if c.manifest {
				var w, g any
				if err := yaml.Unmarshal([]byte(*want.Out), &w); err != nil {
					t.Fatalf("Jinja2's output is not YAML: %v\n%s", err, *want.Out)
				}
				if err := yaml.Unmarshal([]byte(got), &g); err != nil {
					t.Fatalf("kiln's output is not YAML: %v\n%s", err, got)
				}
				if diff := cmp.Diff(w, g); diff != "" {
					t.Errorf("the manifests differ (-jinja2 +kiln):\n%s", diff)
				}
				return
			}
			if got != *want.Out {
				t.Errorf("kiln renders:\n%q\nJinja2 renders:\n%q", got, *want.Out)
			}
		})
	}
}

func (r pyResult) describe() string {
	if r.Out != nil {
		return strconv.Quote(*r.Out)
	}
	return r.Error
}

var _ = errors.New
