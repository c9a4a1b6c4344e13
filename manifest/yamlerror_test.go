package manifest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestYAMLErrorColumnAndHint: a YAML error names the line and the column
// of the mistake and, for the common ones, says what to do.
func TestYAMLErrorColumnAndHint(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		at       string // line:col
		hint     string
	}{
		{"unquoted colon", "from: busybox\nsteps:\n  - run: echo time: now\n", "3:19", `cannot hold ": "`},
		{"unquoted colon after a template", "---\nvars: {w: time}\n---\nfrom: busybox\nsteps:\n  - run: echo {{ w }}: now\n", "6:22", `cannot hold ": "`},
		{"tab", "from: busybox\nsteps:\n\t- run: echo hi\n", "3:1", "not tabs"},
		{"flow map", "from: busybox\nsteps:\n  - run: {echo, hi} && true\n", "3:10", "flow map"},
		{"first document", "---\nvars:\n  greeting: {{ hi }} there\n---\nfrom: busybox\n", "3:13", "flow map"},
		{"plain", "from: busybox\nsteps:\n  - run: echo hi\n    oops\n  - x\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "kiln.yml")
			if err := os.WriteFile(path, []byte(tt.manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(context.Background(), path, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if tt.at != "" && !strings.HasPrefix(msg, path+":"+tt.at+": ") {
				t.Errorf("error %q is not at %s:%s", msg, path, tt.at)
			}
			if tt.at == "" && strings.Count(strings.SplitN(msg, ": ", 2)[0], ":") != 2 {
				t.Errorf("error %q has no line:col", msg)
			}
			if !strings.Contains(msg, tt.hint) {
				t.Errorf("error %q has no hint %q", msg, tt.hint)
			}
		})
	}
}
