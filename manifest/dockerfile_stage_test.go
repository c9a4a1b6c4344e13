package manifest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSchemaDockerfileStage checks that the schema's stage built from a
// Dockerfile has exactly the keys the decoder knows.
func TestSchemaDockerfileStage(t *testing.T) {
	var s struct {
		Defs map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range s.Defs["dockerfileStage"].Properties {
		keys = append(keys, k)
	}
	if d := cmp.Diff(dockerfileStageKeys, keys, cmpSorted()); d != "" {
		t.Errorf("schema dockerfileStage properties mismatch (-want +got):\n%s", d)
	}
}

// TestDockerfileStage checks the stages a Dockerfile stage brings in:
// only those its target uses, renamed, and --build-arg over args:.
func TestDockerfileStage(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile": "FROM busybox AS a\nARG V=df\nRUN echo $V\nFROM a AS b\nRUN true\nFROM busybox AS c\nCOPY --from=b / /\n",
		"app.yml":    "stages:\n  base: {dockerfile: Dockerfile, target: b, args: {V: yaml}}\n  app:\n    from: base\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		buildArgs []string
		want      string
	}{
		{"args", nil, "yaml"},
		{"build-arg wins", []string{"V=cli"}, "cli"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Load(context.Background(), filepath.Join(dir, "app.yml"), Options{BuildArgs: tc.buildArgs})
			if err != nil {
				t.Fatal(err)
			}
			var got [][2]string
			for _, s := range b.Stages {
				got = append(got, [2]string{s.Name, s.From})
			}
			want := [][2]string{{"base:a", "busybox"}, {"base", "base:a"}, {"app", "base"}}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("stages (name, from) mismatch (-want +got):\n%s", d)
			}
			s := b.StageByName("base:a")
			if s == nil || len(s.Steps) != 1 {
				t.Fatalf("stage base:a = %+v, want one step", s)
			}
			if d := cmp.Diff([]KV{{"V", tc.want}}, s.Steps[0].RunEnv); d != "" {
				t.Errorf("the RUN's build args mismatch (-want +got):\n%s", d)
			}
			if b.Target != "app" {
				t.Errorf("Target = %q, want app", b.Target)
			}
		})
	}
}
