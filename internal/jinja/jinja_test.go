package jinja

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// The behaviour Jinja2 defines is checked against Jinja2 itself by
// manifest's differential suite (manifest/testdata/jinja2); these tests
// cover what is kiln's: positions, limits, values from Go, line maps.

func renderWith(t *testing.T, fsys fstest.MapFS, src string, values map[string]any) (string, error) {
	t.Helper()
	tpl, err := NewEnv(fsys).Parse("main", src)
	if err != nil {
		return "", err
	}
	out, _, err := tpl.Render(values, false)
	return out, err
}

func TestErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"inc.j2":     {Data: []byte("ok\n  {{ a.nope }}")},
		"m.j2":       {Data: []byte("{% macro f() %}{{ 1 // 0 }}{% endmacro %}")},
		"self.j2":    {Data: []byte(`{% include "self.j2" %}`)},
		"sub/bad.j2": {Data: []byte("{% if %}")},
	}
	for _, tc := range []struct {
		name, src string
		want      Error
	}{
		{"undefined name", "x {{ nope }}", Error{Pos: Pos{"main", 1, 6}, Msg: `undefined variable "nope"`, Undefined: "nope", Top: true}},
		{"undefined attribute in an include", `{% include "inc.j2" %}`, Error{Pos: Pos{"inc.j2", 2, 6}, Msg: `undefined variable "a.nope"`, Undefined: "a.nope"}},
		{"error in an imported macro", `{% from "m.j2" import f %}{{ f() }}`, Error{Pos: Pos{"m.j2", 1, 19}, Msg: "integer division or modulo by zero"}},
		{"syntax error in an include", `{% include "sub/bad.j2" %}`, Error{Pos: Pos{"sub/bad.j2", 1, 7}, Msg: `template: expected an expression, got "%}"`}},
		{"include outside", `{% include "../x" %}`, Error{Pos: Pos{"main", 1, 12}, Msg: `including "../x": templates can only include files inside the manifest's directory`}},
		{"recursion", `{% include "self.j2" %}`, Error{Pos: Pos{"self.j2", 1, 4}, Msg: "template: maximum recursion depth exceeded"}},
		{"macro recursion", `{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}`, Error{Pos: Pos{"main", 1, 19}, Msg: "template: maximum recursion depth exceeded"}},
		{"unknown filter in a dead branch", `{% if false %}{{ 1 | nope }}{% endif %}`, Error{Pos: Pos{"main", 1, 22}, Msg: `template: no filter named "nope"`}},
		{"random", `{{ [1] | random }}`, Error{Pos: Pos{"main", 1, 10}, Msg: "Jinja2 filter random is not supported by kiln"}},
		{"extends", `{% extends "x" %}`, Error{Pos: Pos{"main", 1, 4}, Msg: "Jinja2 {% extends %} is not supported by kiln"}},
		{"int overflow", `{{ 2 ** 63 }}`, Error{Pos: Pos{"main", 1, 4}, Msg: "Jinja2 an integer beyond 64 bits (9223372036854775808…) is not supported by kiln"}},
		{"big range listed", `{{ range(2000000) | list }}`, Error{Pos: Pos{"main", 1, 21}, Msg: "Jinja2 range() of more than 1000000 numbers is not supported by kiln"}},
		{"loop budget", `{% for i in range(1000000) %}{% for j in range(10) %}{% endfor %}{% endfor %}`, Error{Pos: Pos{"main", 1, 33}, Msg: "Jinja2 a rendering of more than 5000000 loop iterations is not supported by kiln"}},
		{"output budget", `{% for i in range(100) %}{{ "x" * 1000000 }}{% endfor %}`, Error{Pos: Pos{"main", 1, 29}, Msg: "Jinja2 an output of more than 67108864 bytes is not supported by kiln"}},
		{"unsupported method", `{{ "x".encode() }}`, Error{Pos: Pos{"main", 1, 4}, Msg: "Jinja2 str.encode() is not supported by kiln"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := renderWith(t, fsys, tc.src, map[string]any{"a": map[string]any{}})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %q, %v; want the error %v", out, err, &tc.want)
			}
			if diff := cmp.Diff(tc.want, *e); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoValues: values from Go render as their Python counterparts; a Go
// map, which has no order, iterates in key order, a Dict in its own.
func TestGoValues(t *testing.T) {
	d := NewDict()
	d.Set("z", 1)
	d.Set("a", []any{int64(2), 3.0})
	values := map[string]any{
		"m": map[string]any{"b": 1, "a": []string{"x"}},
		"d": d,
		"i": 7, "f": float32(0.5), "n": nil, "b": true,
	}
	got, err := renderWith(t, nil, `{{ m }} {{ d }} {{ i + 1 }} {{ f }} {{ n }} {{ b }} {% for k in d %}{{ k }}{% endfor %}`, values)
	if err != nil {
		t.Fatal(err)
	}
	want := `{'a': ['x'], 'b': 1} {'z': 1, 'a': [2, 3.0]} 8 0.5 None True za`
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDict(t *testing.T) {
	d := NewDict()
	d.Set("b", 1)
	d.Set("a", 2)
	d.Set("b", 3) // keeps its place
	j, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != `{"b":3,"a":2}` {
		t.Errorf("MarshalJSON = %s", j)
	}
	var back Dict
	if err := json.Unmarshal([]byte(`{"z": {"y": 1, "x": [1.0, 2]}, "a": 1.5}`), &back); err != nil {
		t.Fatal(err)
	}
	got, err := renderWith(t, nil, "{{ v }}", map[string]any{"v": &back})
	if err != nil || got != `{'z': {'y': 1, 'x': [1.0, 2]}, 'a': 1.5}` {
		t.Errorf("UnmarshalJSON gave %s, %v", got, err)
	}
	// 1, 1.0 and True are one key, as in Python; the first spelling stays
	e := NewDict()
	for _, k := range []any{int64(1), 1.0, true} {
		if err := e.put(k, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := repr(e); got != "{1: True}" {
		t.Errorf("got %s, want {1: True}", got)
	}
	if err := e.put(&List{}, 1); err == nil {
		t.Error("a list was accepted as a key")
	}
}

// TestLineMap: each output line maps to the template line whose newline
// ends it; a line ended by a newline from elsewhere (an include, a value,
// or one whose template newline a - stripped) maps to the next one.
func TestLineMap(t *testing.T) {
	fsys := fstest.MapFS{"two.j2": {Data: []byte("x\ny\n")}}
	src := "a\n{% for i in [1, 2] %}\n- {{ i }}\n{% endfor %}\n{% include \"two.j2\" %}\nb: {{ multi }}\n  {%- raw %}r\n{% endraw %}end"
	tpl, err := NewEnv(fsys).Parse("main", src)
	if err != nil {
		t.Fatal(err)
	}
	out, lines, err := tpl.Render(map[string]any{"multi": "l1\nl2"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n\n- 1\n\n- 2\n\nx\ny\n\nb: l1\nl2r\nend"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 2, 3, 4, 5, 5, 5, 7, 7, 8}, lines); diff != "" {
		t.Errorf("line map (-want +got):\n%s", diff)
	}
}

func TestFloatRepr(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 1: "1.0", -2.5: "-2.5", 0.1: "0.1", 1e16: "1e+16", 1e15: "1000000000000000.0",
		1.5e-5: "1.5e-05", 0.0001: "0.0001", 123456789.123: "123456789.123", math.Inf(1): "inf", -1e-7: "-1e-07",
	} {
		if got := floatRepr(f); got != want {
			t.Errorf("floatRepr(%v) = %q, want %q", f, got, want)
		}
	}
}
