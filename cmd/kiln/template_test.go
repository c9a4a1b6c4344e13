package main

import (
	"strings"
	"testing"
)

// goTemplate is a Helm-style Go template: kiln must copy it into the
// image unchanged from inside {% raw %}.
const goTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Values.name | default "x" }}
data:
{{- range $k, $v := .Values.data }}
  {{ $k }}: {{ $v | quote }}
{{- end }}
{{/* a comment */}}
`

// TestBuildTemplateRaw builds a template step whose file holds a Go
// template inside {% raw %} and {{ "{{" }} escapes: the file built into
// the image is byte for byte the Go template (a test in the image cmp's
// it with a copy of the expected bytes), and the values around it are
// rendered as Jinja2 renders them.
func TestBuildTemplateRaw(t *testing.T) {
	root := buildRoot(t)
	ctx := writeContext(t, map[string]string{
		"kiln.yml": `---
vars:
  app: web
  ports: {https: 443, http: 80}
---
from: busybox
steps:
  - template: {src: config.j2, dst: /etc/config.tpl}
  - copy: {src: expected.tpl, dst: /etc/expected.tpl}
tests:
  - name: unchanged
    run: cmp /etc/config.tpl /etc/expected.tpl
`,
		"config.j2": `# {{ app }}: {{ "{{" }} .Values.x {{ "}}" }}
{% for name, port in ports.items() %}# {{ name }}={{ port }}{{ "," if not loop.last }}
{% endfor %}{% raw %}` + goTemplate + `{% endraw %}`,
		"expected.tpl": "# web: {{ .Values.x }}\n# https=443,\n# http=80\n" + goTemplate,
	})
	r := kiln(t, root, nil, "build", ctx)
	if r.code != 0 {
		t.Fatalf("exit %d: the template step did not build the Go template unchanged\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr+r.stdout, "unchanged") {
		t.Errorf("the test that compares the files did not run:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
}
