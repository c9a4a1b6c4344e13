package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func testValues() map[string]any {
	return map[string]any{
		"name":  "Kiln",
		"pkgs":  []any{"curl", "jq"},
		"m":     map[string]any{"b": 2, "a": "x"},
		"empty": []any{},
		"flag":  false,
		"html":  `a<b & 'c' "d"`,
		"n":     map[string]any{"deep": map[string]any{"er": "yes"}},
		"path":  "/etc/passwd",
		"big":   map[string]any{"z": 1, "y": 2, "x": 3, "w": 4, "v": 5, "u": 6, "t": 7, "s": 8},
	}
}

// TestRenderTemplate renders snippets through the manifest's renderer:
// Jinja2's forms, the errors of strict rendering (with the manifest's
// hints) and the sandbox. testdata/jinja2 compares with Jinja2 itself.
func TestRenderTemplate(t *testing.T) {
	fsys := fstest.MapFS{
		"inc.yml":     {Data: []byte("inc {{ name }}")},
		"sub/a.yml":   {Data: []byte(`{% include "sub/b.yml" %}`)},
		"sub/b.yml":   {Data: []byte("b {{ nope }}")},
		"loop.yml":    {Data: []byte("{% for p in pkgs %}{{ p }}{% endfor %}")},
		"bad.yml":     {Data: []byte("x {{ name }")},
		"html.yml":    {Data: []byte("{{ html }}")},
		"missing.yml": nil,
	}
	delete(fsys, "missing.yml")
	for _, tc := range []struct {
		name, src, want, err string
	}{
		{name: "plain", src: "a: b", want: "a: b"},
		{name: "variable", src: "{{ name }}", want: "Kiln"},
		{name: "no HTML escaping", src: "{{ html }}", want: `a<b & 'c' "d"`},
		{name: "dotted", src: "{{ n.deep.er }}", want: "yes"},
		{name: "index", src: "{{ pkgs.1 }} {{ pkgs[0] }}", want: "jq curl"},
		{name: "subscript string", src: `{{ m["a"] }}`, want: "x"},
		{name: "for", src: "{% for p in pkgs %}{{ p }},{% endfor %}", want: "curl,jq,"},
		{name: "for map", src: "{% for k in m %}{{ k }}={{ m[k] }};{% endfor %}", want: "a=x;b=2;"},
		{name: "for map unpacks keys", src: "{% for k, v in m %}{% endfor %}", err: `app.yml:11:8: template: not enough values to unpack (expected 2, got 1)`},
		{name: "for items()", src: "{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}", want: "a=x;b=2;"},
		{name: "for keys()", src: "{% for k in m.keys() %}{{ k }};{% endfor %}", want: "a;b;"},
		{name: "for Go map is in key order", src: "{% for k, v in big.items() %}{{ k }}{{ v }}{% endfor %}", want: "s8t7u6v5w4x3y2z1"},
		{name: "for map keys in key order", src: "{% for k in big %}{{ k }}{% endfor %}", want: "stuvwxyz"},
		{name: "for map reversed", src: "{% for k in big|reverse %}{{ k }}{% endfor %}", want: "zyxwvuts"},
		{name: "for list reversed", src: "{% for k in pkgs|reverse %}{{ k }}{% endfor %}", want: "jqcurl"},
		{name: "include does not escape", src: `{% include "html.yml" %}`, want: `a<b & 'c' "d"`},
		{name: "for else", src: "{% for p in empty %}{{ p }}{% else %}none{% endfor %}", want: "none"},
		{name: "if else in for", src: "{% for p in pkgs %}{% if loop.first %}F{% else %}-{% endif %}{% endfor %}", want: "F-"},
		{name: "loop", src: "{% for p in pkgs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}{{ loop.first }}{{ loop.last }} {% endfor %}", want: "10212TrueFalse 21102FalseTrue "},
		{name: "no forloop", src: "{% for p in pkgs %}{{ forloop.Counter }}{% endfor %}", err: `app.yml:11:23: undefined variable "forloop": define it under vars: in the first document, in a --values file, or with --set forloop=VALUE`},
		{name: "nested loop vars", src: "{% for p in pkgs %}{% for q in pkgs %}{{ p }}{{ q }} {% endfor %}{% endfor %}", want: "curlcurl curljq jqcurl jqjq "},
		{name: "default Jinja2", src: `{{ nope | default("y") }}`, want: "y"},
		{name: "no pongo2 filter syntax", src: `{{ nope|default:"y" }}`, err: `app.yml:11:16: template: unexpected ":"`},
		{name: "default attr", src: `{{ m.nope | default('y') }}`, want: "y"},
		{name: "default d", src: `{{ nope|d("y") }}`, want: "y"},
		{name: "default defined", src: `{{ name | default("y") }}`, want: "Kiln"},
		{name: "default after filter", src: `{{ nope | lower | default("y") }}`, err: `app.yml:11:4: undefined variable "nope": define it under vars: in the first document, in a --values file, or with --set nope=VALUE`},
		{name: "default with boolean", src: `{{ nope | default("y", true) }}`, want: "y"},
		{name: "default of variable", src: `{{ nope | default(name) }}`, want: "Kiln"},
		{name: "join", src: `{{ pkgs | join(", ") }}`, want: "curl, jq"},
		{name: "lower upper", src: `{{ name | lower }} {{ name|upper() }}`, want: "kiln KILN"},
		{name: "length count", src: `{{ pkgs | length }} {{ pkgs|count }}`, want: "2 2"},
		{name: "is defined", src: `{% if name is defined %}a{% endif %}{% if nope is defined %}b{% endif %}{% if nope is not defined %}c{% endif %}`, want: "ac"},
		{name: "if false", src: `{% if flag %}a{% else %}b{% endif %}`, want: "b"},
		{name: "if and", src: `{% if name and not flag %}a{% endif %}`, want: "a"},
		{name: "True False", src: `{% if True and not False %}a{% endif %}`, want: "a"},
		{name: "comparison", src: `{% if name == "Kiln" %}a{% endif %}`, want: "a"},
		{name: "in", src: `{% if "jq" in pkgs %}a{% endif %}`, want: "a"},
		{name: "set", src: `{% set x = name|lower %}{{ x }}`, want: "kiln"},
		{name: "with", src: `{% with x=name %}{{ x }}{% endwith %}`, want: "Kiln"},
		{name: "macro", src: `{% macro hi(who) %}hi {{ who }}{% endmacro %}{{ hi(name) }}`, want: "hi Kiln"},
		{name: "comment", src: `a{# {{ nope }} #}b`, want: "ab"},
		{name: "whitespace control", src: "a\n{%- if name %}\nb\n{%- endif %}", want: "a\nb"},
		{name: "include", src: `{% include "inc.yml" %}`, want: "inc Kiln"},
		{name: "include with context", src: `{% include "loop.yml" with context %}`, want: "curljq"},
		{name: "include dot slash", src: `{% include "./inc.yml" %}`, want: "inc Kiln"},
		{name: "string with braces", src: `{{ "}}" }}`, want: "}}"},

		{name: "undefined", src: "a: b\nc: {{ nope }}", err: `app.yml:12:7: undefined variable "nope": define it under vars: in the first document, in a --values file, or with --set nope=VALUE`},
		{name: "undefined attr", src: "{{ n.deep.nope }}", err: `app.yml:11:4: undefined variable "n.deep.nope"`},
		{name: "undefined index", src: "{{ pkgs.5 }}", err: `app.yml:11:4: undefined variable "pkgs.5"`},
		{name: "undefined attr of string", src: "{{ name.x }}", err: `app.yml:11:4: undefined variable "name.x"`},
		{name: "undefined in if", src: "{% if nope %}a{% endif %}", err: `app.yml:11:7: undefined variable "nope": define it under vars: in the first document, in a --values file, or with --set nope=VALUE`},
		{name: "undefined in dead branch is fine", src: "{% if flag %}{{ nope }}{% endif %}ok", want: "ok"},
		{name: "undefined in for", src: "x\n{% for p in nope %}{% endfor %}", err: `app.yml:12:13: undefined variable "nope": define it under vars: in the first document, in a --values file, or with --set nope=VALUE`},
		{name: "undefined filter argument", src: "{{ none2|default(nope) }}", err: `app.yml:11:18: undefined variable "nope": define it under vars: in the first document, in a --values file, or with --set nope=VALUE`},
		{name: "undefined in included file", src: `{% include "sub/a.yml" %}`, err: `dir/sub/b.yml:1:6: undefined variable "nope": define it under vars: in the first document, in a --values file, or with --set nope=VALUE`},
		{name: "undefined loop attribute", src: "{% for p in pkgs %}{{ loop.nope }}{% endfor %}", err: `app.yml:11:23: undefined variable "loop.nope"`},
		{name: "loop outside a loop", src: "{{ loop.index }}", err: `app.yml:11:4: undefined variable "loop": define it under vars: in the first document, in a --values file, or with --set loop=VALUE`},
		{name: "syntax", src: "a\n{{ name }", err: `app.yml:12:9: template: unexpected "}"`},
		{name: "syntax in if", src: `{{ name|lower }} {{ name|upper }} {% if %}`, err: `app.yml:11:41: template: expected an expression, got "%}"`},
		{name: "unknown filter", src: `{{ name | nope }}`, err: `app.yml:11:11: template: no filter named "nope"`},
		{name: "unknown filter in a dead branch", src: `{% if false %}{{ name | nope }}{% endif %}`, err: `app.yml:11:25: template: no filter named "nope"`},
		{name: "unclosed for", src: "a\n  {% for p in pkgs %}\nb", err: `app.yml:12:6: template: {% for %} is not closed: add {% endfor %}`},
		{name: "unclosed if in for", src: "{% for p in pkgs %}{% if p %}{% endfor %}", err: `app.yml:11:23: template: {% if %} is not closed: add {% endif %}`},
		{name: "include absolute", src: `{% include "/etc/passwd" %}`, err: `app.yml:11:12: template: including "/etc/passwd": templates can only include files inside the manifest's directory`},
		{name: "include parent", src: "\n{% include \"../x\" %}", err: `app.yml:12:12: template: including "../x": templates can only include files inside the manifest's directory`},
		{name: "include missing", src: `{% include "missing.yml" %}`, err: `app.yml:11:12: template: including "missing.yml": file does not exist`},
		{name: "include syntax error", src: `{% include "bad.yml" %}`, err: `dir/bad.yml:1:11: template: unexpected "}"`},
		{name: "dynamic include absolute", src: `{% include path %}`, err: `app.yml:11:12: template: including "/etc/passwd": templates can only include files inside the manifest's directory`},
		{name: "extends", src: `{% extends "inc.yml" %}`, err: `app.yml:11:4: Jinja2 {% extends %} is not supported by kiln`},
		{name: "import absolute", src: `{% import "/etc/passwd" as x %}`, err: `app.yml:11:11: template: including "/etc/passwd": templates can only include files inside the manifest's directory`},
		{name: "ssi", src: `{% ssi "/etc/passwd" %}`, err: `app.yml:11:4: template: unknown tag "ssi"`},
		{name: "now", src: `{% now "Y" %}`, err: `app.yml:11:4: template: unknown tag "now"`},
		{name: "lorem", src: `{% lorem %}`, err: `app.yml:11:4: template: unknown tag "lorem"`},
		{name: "lipsum", src: `{{ lipsum() }}`, err: `app.yml:11:4: Jinja2 lipsum() is not supported by kiln`},
		{name: "random", src: `{{ pkgs|random }}`, err: `app.yml:11:9: Jinja2 filter random is not supported by kiln`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRenderer(fsys, "dir", testValues())
			got, _, err := r.render("app.yml", 10, tc.src, true)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("render = %q, want error %q", got, tc.err)
				}
				if diff := cmp.Diff(tc.err, err.Error()); diff != "" {
					t.Errorf("error mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLineMap checks that each rendered line maps to the template line
// that produced it, through loops, includes and multi-line values.
func TestLineMap(t *testing.T) {
	fsys := fstest.MapFS{"two.yml": {Data: []byte("x\ny\n")}}
	src := strings.Join([]string{
		"a: 1",                    // 1
		"{% for p in pkgs %}",     // 2
		"- {{ p }}",               // 3
		"{% endfor %}",            // 4
		`{% include "two.yml" %}`, // 5 (the include's own lines end on it)
		"b: {{ multi }}",          // 6
		"c: {{ name -}}",          // 7
		"  d",                     // 8 (joined to 7 by -}})
		"e",                       // 9
	}, "\n")
	vals := testValues()
	vals["multi"] = "l1\nl2"
	r := newRenderer(fsys, ".", vals)
	out, lines, err := r.render("app.yml", 0, src, true)
	if err != nil {
		t.Fatal(err)
	}
	wantOut := "a: 1\n\n- curl\n\n- jq\n\nx\ny\n\nb: l1\nl2\nc: Kilnd\ne"
	if diff := cmp.Diff(wantOut, out); diff != "" {
		t.Fatalf("output mismatch (-want +got):\n%s", diff)
	}
	want := []int{1, 2, 3, 2, 3, 4, 5, 5, 5, 6, 6, 8, 9}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("line map mismatch (-want +got):\n%s", diff)
	}
}

func TestMapCol(t *testing.T) {
	for _, tc := range []struct {
		rendered, tmpl string
		col, want      int
	}{
		{"  - run: echo hi", "  - run: echo hi", 5, 5},
		{"  - run: echo hello", "  - run: echo {{ greeting }}", 5, 5},
		{"  - run: echo hello", "  - run: echo {{ greeting }}", 17, 15},
		{"  x: hello here", "  x: {{ g }} here", 13, 15},
		{"", "", 1, 1},
	} {
		if got := mapCol(tc.rendered, tc.tmpl, tc.col); got != tc.want {
			t.Errorf("mapCol(%q, %q, %d) = %d, want %d", tc.rendered, tc.tmpl, tc.col, got, tc.want)
		}
	}
}

func TestRenderFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		writeFile(t, dir, name, data)
	}
	write("conf/app.conf.j2", "name={{ name }}\n{% include \"conf/part.j2\" %}\n")
	write("conf/part.j2", "pkgs={{ pkgs|join(\",\") }}")
	write("bad.j2", "{{ nope }}")
	write("esc.j2", `{% include "/etc/hostname" %}`)
	write("link.j2", `{% include "hostname" %}`)
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "hostname")); err != nil {
		t.Fatal(err)
	}
	write("fifo-inc.j2", `{% include "fifo.j2" %}`)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.j2"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Build{Context: dir, Values: testValues()}
	for _, tc := range []struct{ src, want, err string }{
		{src: "./conf/app.conf.j2", want: "name=Kiln\npkgs=curl,jq\n"},
		{src: "bad.j2", err: filepath.Join(dir, "bad.j2") + `:1:4: undefined variable "nope": define it under vars: in the first document, in a --values file, or with --set nope=VALUE`},
		{src: "esc.j2", err: filepath.Join(dir, "esc.j2") + `:1:12: template: including "/etc/hostname": templates can only include files inside the manifest's directory`},
		{src: "link.j2", err: filepath.Join(dir, "link.j2") + `:1:12: template: including "hostname": ` + filepath.Join(dir, "hostname") + " is a symlink to a path outside " + dir + "; kiln reads only files inside it"},
		{src: "fifo.j2", err: "rendering fifo.j2: " + filepath.Join(dir, "fifo.j2") + " is a named pipe; kiln reads only regular files"},
		{src: "fifo-inc.j2", err: filepath.Join(dir, "fifo-inc.j2") + `:1:12: template: including "fifo.j2": ` + filepath.Join(dir, "fifo.j2") + " is a named pipe; kiln reads only regular files"},
		{src: "../x.j2", err: `rendering ../x.j2: the path is outside the build context: sources are relative to the context directory`},
		{src: "nope.j2", err: "rendering nope.j2: no such file or directory"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got, err := RenderFile(b, tc.src)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("RenderFile error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("RenderFile mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
