package manifest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBenchManifest writes a manifest of 200 steps made by loops (its
// template is also valid for the pongo2 renderer kiln had before, so the
// figures compare).
func writeBenchManifest(b *testing.B) string {
	b.Helper()
	var vars strings.Builder
	vars.WriteString("---\nvars:\n  pkgs:\n")
	for i := range 100 {
		fmt.Fprintf(&vars, "    - pkg%d\n", i)
	}
	vars.WriteString("  envs: {A: one, B: two, C: three}\n---\n")
	tmpl := `from: busybox
env:
{% for k in envs %}
  {{ k }}: "{{ envs[k] }}"
{% endfor %}
steps:
{% for p in pkgs %}
  - run: echo {{ loop.index }} {{ p|upper }} {% if loop.first %}first{% else %}next{% endif %}
{% endfor %}
{% for p in pkgs %}
  - run: echo {{ p }} >> /installed
{% endfor %}
tests:
  - name: installed
    run: test -s /installed
`
	p := filepath.Join(b.TempDir(), "app.yml")
	if err := os.WriteFile(p, []byte(vars.String()+tmpl), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkRender renders and decodes a 200-step manifest made by loops
// (go test -run '^$' -bench Render ./manifest/).
func BenchmarkRender(b *testing.B) {
	p := writeBenchManifest(b)
	opts := Options{Host: testHost, Getenv: testEnv}
	out, err := Render(context.Background(), p, opts)
	if err != nil {
		b.Fatal(err)
	}
	if n := strings.Count(string(out), "  - run: "); n != 200 {
		b.Fatalf("%d steps rendered, want 200", n)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Render(context.Background(), p, opts); err != nil {
			b.Fatal(err)
		}
	}
}
