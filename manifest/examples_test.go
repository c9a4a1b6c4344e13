package manifest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// exampleRenders are the manifests and template files of the repository's
// examples/, with the values kiln build is told to use in their comments.
var exampleRenders = []struct {
	file string // under ../examples
	opts Options
	// for a template file: the values it renders with
	values map[string]any
}{
	{file: "hello/app.yml"},
	{file: "hello/app.yml", opts: Options{Values: []string{"hello/values-prod.yml"}}},
	{file: "hello/motd.j2", values: map[string]any{"greeting": "hello", "colors": []any{"red", "green", "blue"}}},
	{file: "modules/tools.yml"},
	{file: "modules/web.yml"},
	{file: "modules/lib/motd/motd.j2", values: map[string]any{"title": "tools", "owner": "ops"}},
	{file: "stages/kiln.yml"},
	{file: "travis/kiln.yml", opts: Options{Set: []string{"project=demo", "dependencies=[curl, jq]"}}},
}

// TestExamplesGolden renders every example manifest (with its modules)
// and template file, and compares the output with
// testdata/examples/<file>.out: a change of template engine must not
// change what the examples build.
func TestExamplesGolden(t *testing.T) {
	for _, c := range exampleRenders {
		name := c.file
		if len(c.opts.Values) > 0 {
			name += "+" + strings.TrimSuffix(filepath.Base(c.opts.Values[0]), ".yml")
		}
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("..", "examples", c.file)
			var out []byte
			var err error
			if c.values != nil {
				out, err = RenderFile(&Build{Context: filepath.Dir(file), Values: c.values}, filepath.Base(file))
			} else {
				o := c.opts
				o.Host, o.Getenv = testHost, testEnv
				for i, v := range o.Values {
					o.Values[i] = filepath.Join("..", "examples", v)
				}
				out, err = Render(context.Background(), file, o)
			}
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "examples", strings.ReplaceAll(name, "/", "_")+".out"), string(out))
		})
	}
}
