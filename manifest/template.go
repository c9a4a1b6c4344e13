package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/flosch/pongo2/v6"

	"github.com/kiln-build/kiln/internal/regfile"
)

// This file is the package's only pongo2 import. pongo2 keeps
// process-wide state (autoescape, the filter registry, DefaultSet); none of
// it is touched: every rendering gets its own TemplateSet, with its own
// loader and globals.

const (
	autoescapeOpen  = "{% autoescape off %}"
	autoescapeClose = "{% endautoescape %}"
	mainTemplate    = "<string>" // the name pongo2 gives a template made by FromString
)

// renderer renders templates strictly, in a sandbox rooted at one
// directory.
type renderer struct {
	fsys      fs.FS  // the directory templates may include from
	dir       string // that directory as the user named it, for error positions
	values    map[string]any
	refs      []ref
	sources   map[string]*source // by pongo2 template name
	undefined error              // the first undefined variable met
	loadErr   error              // the last template that could not be loaded
	module    bool               // a module's: it sees its parameters only
}

func newRenderer(fsys fs.FS, dir string, values map[string]any) *renderer {
	return &renderer{fsys: fsys, dir: dir, values: values, sources: map[string]*source{}}
}

// set returns a sandboxed template set: includes resolve inside r.fsys,
// ssi (which reads host files around the loader), now and lorem, and the
// random filter are banned.
func (r *renderer) set() (*pongo2.TemplateSet, error) {
	set := pongo2.NewSet("kiln", loader{r})
	for _, t := range []string{"ssi", "now", "lorem"} {
		if err := set.BanTag(t); err != nil {
			return nil, fmt.Errorf("banning template tag %s: %w", t, err)
		}
	}
	if err := set.BanFilter("random"); err != nil {
		return nil, fmt.Errorf("banning template filter random: %w", err)
	}
	set.Globals["_kiln_v"] = r.lookup
	set.Globals["_kiln_d"] = r.defined
	return set, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// render renders src, the template of file starting at line lineOff+1.
// With markers, it also returns for each rendered line the template line
// (1-based, in src) that produced it.
func (r *renderer) render(file string, lineOff int, src string, markers bool) (string, []int, error) {
	set, err := r.set()
	if err != nil {
		return "", nil, err
	}
	ctx := pongo2.Context{}
	for k, v := range r.values {
		if !identRE.MatchString(k) {
			return "", nil, fmt.Errorf("template value %q: a top-level name must be letters, digits and _", k)
		}
		ctx[k] = v
	}
	s := rewrite(&r.refs, file, lineOff, src, autoescapeOpen, markers)
	s.out += autoescapeClose
	r.sources[mainTemplate] = s
	tpl, err := noPanic(file, func() (*pongo2.Template, error) { return set.FromString(s.out) })
	if err != nil {
		if b := s.unclosed; b != nil && strings.Contains(err.Error(), "not found (or beginning tag not provided)") {
			// the tag pongo2 misses is the one this package wrapped
			// the template in: name the user's
			return "", nil, Errorf(b.pos, "template: {%% %s %%} is not closed: add {%% end%s %%}", b.name, b.name)
		}
		return "", nil, r.error(err)
	}
	out, err := noPanic(file, func() (string, error) { return tpl.Execute(ctx) })
	if err != nil {
		return "", nil, r.error(err)
	}
	if !markers {
		return out, nil, nil
	}
	out, lines := unmark(out, strings.Count(src, "\n")+1)
	return out, lines, nil
}

// noPanic calls fn, turning a panic of pongo2 (some templates make it
// panic: a modulo by zero in a for tag, say) into an *Error naming file.
func noPanic[T any](file string, fn func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &Error{Pos: Pos{File: file}, Msg: fmt.Sprintf("template: the template engine failed on this template: %v", p)}
		}
	}()
	return fn()
}

// unmark strips the line markers from out and returns, for each line of
// it, the template line that produced it: the line's marker or, for a
// line without one (from an include, or a value with newlines), the next
// marker's.
func unmark(out string, last int) (string, []int) {
	var b strings.Builder
	var lines []int
	pending := 0 // rendered lines waiting for a marker
	for line := range strings.SplitAfterSeq(out, "\n") {
		if line == "" {
			continue
		}
		n := 0
		for {
			i := strings.IndexRune(line, markStart)
			if i < 0 {
				break
			}
			j := strings.IndexRune(line[i:], markEnd)
			if j < 0 {
				break
			}
			n, _ = strconv.Atoi(line[i+len(string(markStart)) : i+j])
			line = line[:i] + line[i+j+len(string(markEnd)):]
		}
		b.WriteString(line)
		lines = append(lines, 0)
		pending++
		if n > 0 {
			for k := len(lines) - pending; k < len(lines); k++ {
				lines[k] = n
			}
			pending = 0
		}
	}
	for k := len(lines) - pending; k < len(lines); k++ {
		lines[k] = last
	}
	return b.String(), lines
}

// error turns a pongo2 error into an *Error at the user's position.
func (r *renderer) error(err error) error {
	if r.undefined != nil {
		return r.undefined
	}
	var pe *pongo2.Error
	if !errors.As(err, &pe) {
		return err
	}
	msg := err.Error()
	if pe.OrigError != nil {
		msg = pe.OrigError.Error()
	}
	msg = strings.TrimSuffix(msg, ".")
	var pos Pos
	if pe.Sender == "fromfile" {
		// pe.Filename is the file that could not be loaded, and the
		// position is that of the include in some template
		if r.loadErr != nil {
			msg = r.loadErr.Error()
		}
		pos = r.locate(pe)
		return &Error{Pos: pos, Msg: "template: " + msg}
	}
	if s, ok := r.sources[pe.Filename]; ok && pe.Line > 0 {
		pos = s.outPos(pe.Line, pe.Column)
	} else if s, ok := r.sources[mainTemplate]; ok && pe.Filename == "" {
		pos = Pos{File: s.file}
	} else {
		pos = Pos{File: filepath.Join(r.dir, pe.Filename), Line: pe.Line, Col: pe.Column}
	}
	if pe.Sender != "" && pe.Sender != "execution" {
		return &Error{Pos: pos, Msg: "template " + pe.Sender + ": " + firstLower(msg)}
	}
	return &Error{Pos: pos, Msg: "template: " + firstLower(msg)}
}

// locate finds the template whose line pe.Line holds pe's token at
// pe.Column (pongo2 does not say which template an include error is in).
func (r *renderer) locate(pe *pongo2.Error) Pos {
	names := []string{mainTemplate}
	for n := range r.sources {
		if n != mainTemplate {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	for _, n := range names {
		s := r.sources[n]
		lines := strings.Split(s.out, "\n")
		if pe.Line < 1 || pe.Line > len(lines) || pe.Token == nil {
			continue
		}
		l := lines[pe.Line-1]
		if c := pe.Column - 1; c >= 0 && c < len(l) && strings.Contains(l[c:], pe.Token.Val) {
			return s.outPos(pe.Line, pe.Column)
		}
	}
	return r.sources[mainTemplate].outPos(pe.Line, pe.Column)
}

func firstLower(s string) string {
	if len(s) > 1 && 'A' <= s[0] && s[0] <= 'Z' && !('A' <= s[1] && s[1] <= 'Z') {
		return strings.ToLower(s[:1]) + s[1:]
	}
	return s
}

// lookup resolves reference n; it is the template's _kiln_v.
func (r *renderer) lookup(ctx *pongo2.ExecutionContext, n int) (*pongo2.Value, error) {
	rf := r.refs[n]
	v, bad := resolve(ctx, rf.path)
	if bad < 0 {
		if pv, ok := v.(*pongo2.Value); ok {
			// pongo2 does not unwrap an interface (a loop variable over
			// a []any) behind a function's result: unwrap it here
			v = pv.Interface()
		}
		if rf.iter {
			v = sortedKeys(v)
		}
		return pongo2.AsValue(v), nil
	}
	if rf.mode != refStrict {
		return pongo2.AsValue(nil), nil
	}
	name := strings.Join(rf.path[:bad+1], ".")
	var err *Error
	switch {
	case rf.path[0] == "env" && len(rf.path) > 1 && bad == 1:
		err = Errorf(rf.pos, "undefined variable %q: allow the environment variable with --env-var %s or list it under env_vars: in the first document", name, rf.path[1])
	case bad == 0 && r.module:
		err = Errorf(rf.pos, "undefined variable %q: a module sees only its parameters and host: declare it under params: in the module's first document and pass it with with:", name)
	case bad == 0:
		err = Errorf(rf.pos, "undefined variable %q: define it under vars: in the first document, in a --values file, or with --set %s=VALUE", name, name)
	default:
		err = Errorf(rf.pos, "undefined variable %q", name)
	}
	if r.undefined == nil {
		r.undefined = err
	}
	return nil, err
}

// sortedKeys returns the keys of a map with string keys in order, and
// any other value as it is.
func sortedKeys(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return v
	}
	keys := make([]string, 0, rv.Len())
	for _, k := range rv.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	l := make([]any, len(keys))
	for i, k := range keys {
		l[i] = k
	}
	return l
}

// defined reports whether reference n resolves; it is the template's _kiln_d.
func (r *renderer) defined(ctx *pongo2.ExecutionContext, n int) *pongo2.Value {
	_, bad := resolve(ctx, r.refs[n].path)
	return pongo2.AsValue(bad < 0)
}

// loopFields maps Jinja2's loop attributes to pongo2's forloop fields.
var loopFields = map[string]string{
	"index": "Counter", "index0": "Counter0", "revindex": "Revcounter",
	"revindex0": "Revcounter0", "first": "First", "last": "Last",
}

// resolve looks path up in the template's context. It returns the value,
// and -1, or the index of the first part of path that is not defined.
func resolve(ctx *pongo2.ExecutionContext, p []string) (any, int) {
	v, ok := ctx.Private[p[0]]
	if !ok {
		v, ok = ctx.Public[p[0]]
	}
	if !ok && p[0] == "loop" {
		fl, ok := ctx.Private["forloop"]
		if !ok || fl == nil {
			return nil, 0
		}
		if len(p) == 1 {
			return fl, -1
		}
		f := reflect.Indirect(reflect.ValueOf(fl))
		var out any
		if p[1] == "length" {
			out = int(f.FieldByName("Counter0").Int() + f.FieldByName("Revcounter").Int())
		} else if name, ok := loopFields[p[1]]; ok {
			out = f.FieldByName(name).Interface()
		} else {
			return nil, 1
		}
		if len(p) > 2 {
			return nil, 2
		}
		return out, -1
	}
	if !ok {
		return nil, 0
	}
	for i := 1; i < len(p); i++ {
		if v, ok = attr(v, p[i]); !ok {
			return nil, i
		}
	}
	return v, -1
}

// attr returns v's key, field or element called name.
func attr(v any, name string) (any, bool) {
	if pv, ok := v.(*pongo2.Value); ok {
		v = pv.Interface()
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil, false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, false
		}
		e := rv.MapIndex(reflect.ValueOf(name).Convert(rv.Type().Key()))
		if !e.IsValid() {
			return nil, false
		}
		return e.Interface(), true
	case reflect.Slice, reflect.Array, reflect.String:
		i, err := strconv.Atoi(name)
		if err != nil || i < 0 || i >= rv.Len() {
			return nil, false
		}
		return rv.Index(i).Interface(), true
	case reflect.Struct:
		f, ok := rv.Type().FieldByName(name)
		if !ok || !f.IsExported() {
			return nil, false
		}
		return rv.FieldByIndex(f.Index).Interface(), true
	}
	return nil, false
}

// loader resolves include, import and extends inside the renderer's
// directory, and rewrites what it loads like the manifest.
type loader struct{ r *renderer }

// loadError is a template that may not or cannot be loaded.
type loadError struct {
	name string
	err  error
}

func (e *loadError) Error() string {
	return fmt.Sprintf("including %q: %v", e.name, e.err)
}

func (l loader) Abs(base, name string) string {
	if path.IsAbs(name) || filepath.IsAbs(name) {
		return name
	}
	if base == mainTemplate || base == "" {
		base = "."
	} else {
		base = path.Dir(base)
	}
	return path.Join(base, name)
}

func (l loader) Get(name string) (io.Reader, error) {
	if !fs.ValidPath(name) {
		l.r.loadErr = &loadError{name: name, err: errors.New("templates can only include files inside the manifest's directory")}
		return nil, l.r.loadErr
	}
	b, err := fs.ReadFile(l.r.fsys, name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.r.loadErr = &loadError{name: name, err: err}
		return nil, l.r.loadErr
	}
	// autoescape is on by default in included templates too
	s := rewrite(&l.r.refs, filepath.Join(l.r.dir, name), 0, string(b), autoescapeOpen, false)
	s.out += autoescapeClose
	l.r.sources[name] = s
	return strings.NewReader(s.out), nil
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
