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

	"github.com/google/go-cmp/cmp"
)

func TestPosString(t *testing.T) {
	inner := Pos{File: "app.yml", Line: 8, Col: 5}
	mid := Pos{File: "modules/user.yml", Line: 16, Col: 5, Caller: &inner}
	for _, tc := range []struct {
		name string
		pos  Pos
		want string
	}{
		{"plain", Pos{File: "app.yml", Line: 3, Col: 1}, "app.yml:3:1"},
		{"module", mid, "app.yml:8:5 → modules/user.yml:16:5"},
		{"nested", Pos{File: "modules/check.yml", Line: 6, Col: 5, Caller: &mid}, "app.yml:8:5 → modules/user.yml:16:5 → modules/check.yml:6:5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pos.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadModule(t *testing.T) {
	got, err := ReadModule("testdata/modules/modules/user/module.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := &ModuleInfo{
		Name:        "add-user",
		Description: "Adds a user with a home and a profile.",
		Params: []Param{
			{Name: "name", Type: "string", Required: true, Description: "the user's name"},
			{Name: "uid", Type: "int", Default: 1000, Description: "the user's id"},
			{Name: "shell", Type: "string", Default: "/bin/sh", Enum: []any{"/bin/sh", "/bin/ash"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadModule mismatch (-want +got):\n%s", diff)
	}
	// without a first document, a module is named after its file
	got, err = ReadModule("testdata/invalid/module-cycle/b.yml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&ModuleInfo{Name: "b"}, got); diff != "" {
		t.Errorf("ReadModule mismatch (-want +got):\n%s", diff)
	}
}

// TestModuleParamDeclErrors checks the errors of a module's own
// declarations: they name the module's line and the caller's.
func TestModuleParamDeclErrors(t *testing.T) {
	for _, tc := range []struct {
		name, params, want string
	}{
		{"bad type", "  a: {type: float}", `app.yml:3:5 → m.yml:3:13: parameter "a": type "float": use string, int, bool, list, map`},
		{"default of another type", "  a: {type: int, default: x}", `app.yml:3:5 → m.yml:3:27: parameter "a" default must be an integer, not a string`},
		{"default not in enum", "  a: {default: c, enum: [a, b]}", `app.yml:3:5 → m.yml:3:16: parameter "a": the default c is not one of its enum`},
		{"reserved name", "  host: {}", `app.yml:3:5 → m.yml:3:3: parameter name "host": use letters, digits and _ (host and env are reserved)`},
		{"unknown field", "  a: {defualt: 1}", `app.yml:3:5 → m.yml:3:7: unknown key "defualt" in parameter "a": known keys are default, required, description, type, enum`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "m.yml", "---\nparams:\n"+tc.params+"\n---\nsteps:\n  - run: echo hi\n")
			writeFile(t, dir, "app.yml", "from: scratch\nsteps:\n  - use: ./m.yml\n")
			_, err := Load(context.Background(), filepath.Join(dir, "app.yml"), Options{})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if got := strings.ReplaceAll(err.Error(), dir+"/", ""); got != tc.want {
				t.Errorf("error = %q\nwant    %q", got, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dirResolver resolves every registry source to one directory.
type dirResolver struct {
	dir, digest string
	asked       []string
}

func (r *dirResolver) ResolveModule(_ context.Context, source string) (ResolvedModule, error) {
	r.asked = append(r.asked, source)
	if strings.Contains(source, "missing") {
		return ResolvedModule{}, errors.New("not found")
	}
	return ResolvedModule{Dir: r.dir, Digest: r.digest}, nil
}

// TestModuleRegistrySource uses a module through a resolver: its copy and
// template steps read its own directory, and the build lists it with
// its digest.
func TestModuleRegistrySource(t *testing.T) {
	mod := t.TempDir()
	writeFile(t, mod, ModuleFile, "---\nname: greet\nparams:\n  who: {default: world}\n---\nsteps:\n  - copy: {src: files/a.txt, dst: /a.txt}\n  - template: {src: hello.j2, dst: /hello}\n  - use: ./inner.yml\n")
	writeFile(t, mod, "inner.yml", "steps:\n  - copy: {src: files, dst: /files}\n")
	writeFile(t, mod, "files/a.txt", "a\n")
	writeFile(t, mod, "hello.j2", "hello {{ who }}\n")
	app := t.TempDir()
	writeFile(t, app, "app.yml", "from: scratch\nsteps:\n  - use: oci://127.0.0.1:5000/mods/greet:1\n    with: {who: kiln}\n")
	r := &dirResolver{dir: mod, digest: "sha256:" + strings.Repeat("a", 64)}
	b, err := Load(context.Background(), filepath.Join(app, "app.yml"), Options{Modules: r})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Name, Src, Dir string
		Values         map[string]any `json:",omitempty"`
	}
	var steps []got
	for _, st := range b.Stages[0].Steps {
		switch st.Kind {
		case StepCopy:
			steps = append(steps, got{st.Name, st.Copy.Src, st.Copy.Dir, nil})
		case StepTemplate:
			steps = append(steps, got{st.Name, st.Template.Src, st.Template.Dir, map[string]any{"who": st.Template.Values["who"]}})
		}
	}
	want := []got{
		{"greet: copy: files/a.txt -> /a.txt", "files/a.txt", mod, nil},
		{"greet: template: hello.j2 -> /hello", "hello.j2", mod, map[string]any{"who": "kiln"}},
		{"greet: inner: copy: files -> /files", "files", mod, nil},
	}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("steps mismatch (-want +got):\n%s", diff)
	}
	out, err := RenderTemplate(b, b.Stages[0].Steps[1].Template)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello kiln\n" {
		t.Errorf("RenderTemplate = %q, want %q", out, "hello kiln\n")
	}
	wantMods := []UsedModule{
		{Source: "oci://127.0.0.1:5000/mods/greet:1", File: filepath.Join(mod, ModuleFile), Digest: r.digest, Pos: Pos{File: filepath.Join(app, "app.yml"), Line: 3, Col: 5}},
		{Source: "./inner.yml", File: filepath.Join(mod, "inner.yml"), Pos: Pos{File: filepath.Join(mod, ModuleFile), Line: 9, Col: 5, Caller: &Pos{File: filepath.Join(app, "app.yml"), Line: 3, Col: 5}}},
	}
	if diff := cmp.Diff(wantMods, b.Modules); diff != "" {
		t.Errorf("Modules mismatch (-want +got):\n%s", diff)
	}

	// a registry module's paths stay in its directory
	writeFile(t, mod, "inner.yml", "steps:\n  - use: ../../escape.yml\n")
	if _, err := Load(context.Background(), filepath.Join(app, "app.yml"), Options{Modules: r}); err == nil || !strings.Contains(err.Error(), "is outside the build context") {
		t.Errorf("a registry module using ../..: error = %v, want outside", err)
	}
	// without a resolver, or when it fails
	_, err = Load(context.Background(), filepath.Join(app, "app.yml"), Options{})
	if err == nil || !strings.Contains(err.Error(), "app.yml:3:5: use oci://127.0.0.1:5000/mods/greet:1: registry modules need") {
		t.Errorf("without a resolver: error = %v", err)
	}
	writeFile(t, app, "app.yml", "from: scratch\nsteps:\n  - use: oci://127.0.0.1:5000/mods/missing:1\n")
	_, err = Load(context.Background(), filepath.Join(app, "app.yml"), Options{Modules: r})
	if err == nil || !strings.HasSuffix(err.Error(), "app.yml:3:5: use oci://127.0.0.1:5000/mods/missing:1: not found") {
		t.Errorf("a failing resolver: error = %v", err)
	}
}

// TestModuleRender checks that kiln render shows the modules' rendered
// steps, as comments after the manifest.
func TestModuleRender(t *testing.T) {
	out, err := Render(context.Background(), "testdata/modules/app.yml", Options{Host: testHost})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# module add-user (testdata/modules/modules/user/module.yml), used at testdata/modules/app.yml:8:5:\n",
		"#     - run: adduser -D -u 1001 -s /bin/sh alice\n",
		"#     - run: adduser -D -u 1000 -s /bin/ash bob\n",
		"# module check (testdata/modules/modules/check.yml), used at testdata/modules/app.yml:10:5 → testdata/modules/modules/user/module.yml:16:5:\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Render output lacks %q; it is:\n%s", want, out)
		}
	}
}

// TestModuleSchema checks that the JSON Schema has the use: step, with
// the keys the decoder knows.
func TestModuleSchema(t *testing.T) {
	var s struct {
		Defs map[string]struct {
			OneOf []struct {
				Required   []string
				Properties map[string]any
			}
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	for _, alt := range s.Defs["step"].OneOf {
		if cmp.Equal(alt.Required, []string{"use"}) {
			var keys []string
			for k := range alt.Properties {
				keys = append(keys, k)
			}
			if diff := cmp.Diff(useKeys, keys, cmpSorted()); diff != "" {
				t.Errorf("use step properties mismatch (-want +got):\n%s", diff)
			}
			return
		}
	}
	t.Error("the schema has no step requiring use")
}

// TestModuleParamTypes passes a value of each type, and a value of
// another type to each, through with:.
func TestModuleParamTypes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "m.yml", `---
params:
  s: {type: string, default: x}
  i: {type: int, default: 1}
  b: {type: bool, default: false}
  l: {type: list, default: []}
  m: {type: map, default: {}}
---
steps:
  - run: echo {{ s }} {{ i }} {{ b }} {{ l|join(",") }} {{ m.k }}
`)
	for _, tc := range []struct {
		name, with, want string
	}{
		{"all", "{s: 3.12, i: 7, b: true, l: [a, b], m: {k: v}}", "m: run: echo 3.12 7 True a,b v"},
		{"int as string", "{i: seven, m: {k: v}}", `app.yml:4:15: module DIR/m.yml: parameter "i" must be an integer, not a string`},
		{"bool as int", "{b: 1, m: {k: v}}", `app.yml:4:15: module DIR/m.yml: parameter "b" must be true or false, not a number`},
		{"list as map", "{l: {a: 1}, m: {k: v}}", `app.yml:4:15: module DIR/m.yml: parameter "l" must be a list, not a map`},
		{"map as list", "{m: [k]}", `app.yml:4:15: module DIR/m.yml: parameter "m" must be a map, not a list`},
		{"string as map", "{s: {a: 1}, m: {k: v}}", `app.yml:4:15: module DIR/m.yml: parameter "s" must be a string, not a map`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, dir, "app.yml", "from: scratch\nsteps:\n  - use: ./m.yml\n    with: "+tc.with+"\n")
			b, err := Load(context.Background(), filepath.Join(dir, "app.yml"), Options{})
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), dir, "DIR")
				got = strings.TrimPrefix(got, "DIR/")
			} else {
				got = b.Stages[0].Steps[0].Name
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestModuleSymlinkOutside refuses a module reached through a symbolic
// link that leaves the build context.
func TestModuleSymlinkOutside(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, outside, "m.yml", "steps:\n  - run: echo outside\n")
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "app.yml", "from: scratch\nsteps:\n  - use: ./lib/m.yml\n")
	_, err := Load(context.Background(), filepath.Join(dir, "app.yml"), Options{})
	if err == nil || !strings.Contains(err.Error(), "app.yml:3:5: use ./lib/m.yml: the module "+dir+"/lib/m.yml is outside the build context") {
		t.Errorf("error = %v, want outside the build context", err)
	}
}

// TestReadModuleConfined: kiln module doc and push read a module file
// inside its directory: a link out of it or a FIFO fails naming it, a
// link inside is read.
func TestReadModuleConfined(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	writeFile(t, filepath.Dir(secret), "secret", "SECRET: 1\n")
	for _, tc := range []struct {
		name string
		make func(dir, p string) error
		want string // in the error; "" for success
	}{
		{"link inside", func(dir, p string) error {
			writeFile(t, dir, "real.yml", "name: x\n---\nsteps: []\n")
			return os.Symlink("real.yml", p)
		}, ""},
		{"link outside", func(_, p string) error { return os.Symlink(secret, p) }, "module.yml is a symlink to a path outside"},
		{"fifo", func(_, p string) error { return syscall.Mkfifo(p, 0o644) }, "module.yml is a named pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, ModuleFile)
			if err := tc.make(dir, p); err != nil {
				t.Fatal(err)
			}
			info, err := ReadModule(p)
			if tc.want == "" {
				if err != nil || info.Name != "x" {
					t.Fatalf("ReadModule = %+v, %v", info, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("ReadModule: error = %v, want one saying %q without the file's content", err, tc.want)
			}
		})
	}
}
