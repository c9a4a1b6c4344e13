package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kiln-build/kiln/internal/jinja"
	"github.com/kiln-build/kiln/internal/regfile"
)

// renderer renders templates as Jinja2 does (package jinja), strictly,
// in a sandbox rooted at one directory.
type renderer struct {
	env    *jinja.Env
	dir    string // the directory as the user named it, for error positions
	values map[string]any
	module bool // a module's: it sees its parameters only
}

func newRenderer(fsys fs.FS, dir string, values map[string]any) *renderer {
	return &renderer{env: jinja.NewEnv(fsys), dir: dir, values: values}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// mainName names the template being rendered in the engine's positions:
// no file of the directory has it.
const mainName = ""

// render renders src, the template of file starting at line lineOff+1.
// With markers, it also returns for each rendered line the template line
// (1-based, in src) that produced it.
func (r *renderer) render(file string, lineOff int, src string, markers bool) (string, []int, error) {
	for k := range r.values {
		if !identRE.MatchString(k) {
			return "", nil, fmt.Errorf("template value %q: a top-level name must be letters, digits and _", k)
		}
	}
	t, err := r.env.Parse(mainName, src)
	if err != nil {
		return "", nil, r.error(file, lineOff, err)
	}
	out, lines, err := t.Render(r.values, markers)
	if err != nil {
		return "", nil, r.error(file, lineOff, err)
	}
	return out, lines, nil
}

// error turns an engine error into an *Error at the user's position.
func (r *renderer) error(file string, lineOff int, err error) error {
	var je *jinja.Error
	if !errors.As(err, &je) {
		return err
	}
	pos := Pos{File: file, Line: je.Pos.Line + lineOff, Col: je.Pos.Col}
	if je.Pos.Name != mainName {
		pos = Pos{File: filepath.Join(r.dir, filepath.FromSlash(je.Pos.Name)), Line: je.Pos.Line, Col: je.Pos.Col}
	}
	msg := je.Msg
	name := je.Undefined
	switch {
	case strings.HasPrefix(name, "env.") && strings.Count(name, ".") == 1 && !r.module:
		msg = fmt.Sprintf("undefined variable %q: allow the environment variable with --env-var %s or list it under env_vars: in the first document", name, name[len("env."):])
	case je.Top && r.module:
		msg = fmt.Sprintf("undefined variable %q: a module sees only its parameters and host: declare it under params: in the module's first document and pass it with with:", name)
	case je.Top:
		msg = fmt.Sprintf("undefined variable %q: define it under vars: in the first document, in a --values file, or with --set %s=VALUE", name, name)
	case name != "" || strings.HasPrefix(msg, "template") || strings.HasPrefix(msg, "Jinja2 "):
	default:
		msg = "template: " + msg
	}
	return &Error{Pos: pos, Msg: msg}
}

// RenderFile renders the template file src of a template step (relative
// to b.Context) with b.Values, as strictly and in the same sandbox as the
// manifest: it may include files under b.Context only.
func RenderFile(b *Build, src string) ([]byte, error) {
	return renderIn(b.Context, b.Values, src)
}

// RenderTemplate renders the file of a template step: RenderFile, but
// from t.Dir (a registry module's directory) when set, and with t.Values
// (a module's parameters) when not nil.
func RenderTemplate(b *Build, t *Template) ([]byte, error) {
	dir, values := b.Context, b.Values
	if t.Dir != "" {
		dir = t.Dir
	}
	if t.Values != nil {
		values = t.Values
	}
	return renderIn(dir, values, t.Src)
}

// renderIn renders src, relative to dir, with values; includes stay in
// dir.
func renderIn(dir string, values map[string]any, src string) ([]byte, error) {
	if err := inContext(src); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", src, err)
	}
	fsys := regfile.FS(dir)
	name := path.Clean(filepath.ToSlash(src))
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("rendering %s: %w", src, err)
	}
	r := newRenderer(fsys, dir, values)
	out, _, err := r.render(filepath.Join(dir, name), 0, string(data), false)
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}
