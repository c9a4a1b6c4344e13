package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretMarker is in the "host" file a hostile repository links to, in
// a shape (secretShapes) that the parser of the file kiln takes it for
// quotes in its error on today's code.
const secretMarker = "SECRET_MARKER_4711"

// secretShapes are host file contents by what kiln takes them for.
var secretShapes = map[string]string{
	"lock":       "images:\n  " + secretMarker + ": " + secretMarker + "\n",
	"yaml":       secretMarker + ": 1\n",
	"dockerfile": secretMarker + " x\n",
	"template":   "{{ " + secretMarker + " }}\n",
}

// writeSecret writes a host file outside any build context holding
// content, and returns its path.
func writeSecret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// symlink makes name in dir a link to target, making its parents.
func symlink(t *testing.T, dir, name, target string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// TestEscapeRepoSymlinks: a hostile repository links a file that kiln
// reads from the build context or the manifest's directory (kiln.lock, a
// Dockerfile stage, a module, a template source, an include, the
// manifest itself) to a host file. Every command that reads it fails,
// naming the file, and prints nothing of the host file's content.
func TestEscapeRepoSymlinks(t *testing.T) {
	scratch := "from: scratch\nsteps:\n  - copy: a.txt /a.txt\n"
	cases := []struct {
		name  string
		files map[string]string // the context's regular files
		link  string            // the file made a link to the secret
		shape string            // a key of secretShapes
		cmds  [][]string        // each run with the context as last argument
		want  string            // the name errors must give
	}{
		{
			name:  "kiln.lock",
			files: map[string]string{"kiln.yml": scratch, "a.txt": "a"},
			link:  "kiln.lock",
			shape: "lock",
			cmds:  [][]string{{"build", "--locked"}, {"outdated"}},
			want:  "kiln.lock",
		},
		{
			name: "dockerfile stage",
			files: map[string]string{"a.txt": "a", "kiln.yml": `stages:
  base: {dockerfile: ./build/Dockerfile}
  main:
    from: base
`},
			link:  "build/Dockerfile",
			shape: "dockerfile",
			cmds:  [][]string{{"build"}, {"render"}, {"lock"}, {"outdated"}},
			want:  "Dockerfile",
		},
		{
			name: "module file",
			files: map[string]string{"a.txt": "a", "kiln.yml": `from: scratch
steps:
  - use: ./lib/x
`},
			link:  "lib/x/module.yml",
			shape: "yaml",
			cmds:  [][]string{{"build"}, {"render"}, {"lock"}, {"outdated"}},
			want:  "module.yml",
		},
		{
			name: "template source",
			files: map[string]string{"kiln.yml": `from: scratch
steps:
  - template: {src: motd.j2, dst: /etc/motd}
`},
			link:  "motd.j2",
			shape: "template",
			cmds:  [][]string{{"build"}},
			want:  "motd.j2",
		},
		{
			name: "include",
			files: map[string]string{"a.txt": "a", "kiln.yml": `from: scratch
steps:
{% include "steps.yml" %}
`},
			link:  "steps.yml",
			shape: "yaml",
			cmds:  [][]string{{"build"}, {"render"}, {"lock"}, {"outdated"}},
			want:  "steps.yml",
		},
		{
			name:  "manifest",
			files: map[string]string{"a.txt": "a"},
			link:  "kiln.yml",
			shape: "yaml",
			cmds:  [][]string{{"build"}, {"render"}, {"lock"}, {"outdated"}},
			want:  "kiln.yml",
		},
		{
			name:  "dockerfile manifest",
			files: map[string]string{"a.txt": "a"},
			link:  "Dockerfile",
			shape: "dockerfile",
			cmds:  [][]string{{"build"}, {"render"}, {"lock"}, {"outdated"}},
			want:  "Dockerfile",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secret := writeSecret(t, secretShapes[tc.shape])
			dir := writeContext(t, tc.files)
			symlink(t, dir, tc.link, secret)
			root := newRoot(t)
			for _, args := range tc.cmds {
				r := kiln(t, root, nil, append(args, dir)...)
				what := "kiln " + strings.Join(args, " ")
				if r.code == 0 {
					t.Errorf("%s: exit 0, want a failure\nstdout: %s\nstderr: %s", what, r.stdout, r.stderr)
				}
				if strings.Contains(r.stdout+r.stderr, secretMarker) {
					t.Errorf("%s printed the linked host file's content:\nstdout: %s\nstderr: %s", what, r.stdout, r.stderr)
				}
				if !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%s: the error does not name %s:\n%s", what, tc.want, r.stderr)
				}
			}
			if b, err := os.ReadFile(secret); err != nil || string(b) != secretShapes[tc.shape] {
				t.Errorf("the host file changed: %q, %v", b, err)
			}
		})
	}
}

// TestEscapeRepoSymlinksInside: links that stay inside the manifest's
// directory keep working: the manifest, a Dockerfile stage, a module, an
// include and a copied tree's link (copied as a link).
func TestEscapeRepoSymlinksInside(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"real/app.yml": `from: scratch
steps:
{% include "inc/steps.yml" %}
  - use: ./lib/x
`,
		"real/steps.yml":  "  - copy: a.txt /a.txt\n",
		"real/module.yml": "steps:\n  - copy: a.txt /b.txt\n",
		"a.txt":           "a",
	})
	symlink(t, dir, "kiln.yml", "real/app.yml")
	symlink(t, dir, "inc/steps.yml", "../real/steps.yml")
	symlink(t, dir, "lib/x/module.yml", "../../real/module.yml")
	root := newRoot(t)
	r := mustKiln(t, root, "render", dir)
	for _, want := range []string{"/a.txt", "/b.txt"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("kiln render: %s missing from\n%s", want, r.stdout)
		}
	}
}
