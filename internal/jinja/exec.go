package jinja

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Env loads templates from a file system and keeps them parsed.
type Env struct {
	fsys    fs.FS
	cache   map[string]*Template
	parsed  [][]stmt // every template parsed, for Names
	filters map[string]filterFunc
	tests   map[string]testFunc
}

// NewEnv returns an Env reading templates from fsys (may be nil: then
// include and import fail).
func NewEnv(fsys fs.FS) *Env {
	return &Env{fsys: fsys, cache: map[string]*Template{}, filters: newFilters(), tests: newTests()}
}

// Template is a parsed template.
type Template struct {
	env  *Env
	src  *source
	body []stmt
}

// Parse parses text as the template called name.
func (e *Env) Parse(name, text string) (*Template, error) {
	src := newSource(name, text)
	body, err := parse(src)
	if err != nil {
		return nil, err
	}
	if err := e.checkNames(src, body); err != nil {
		return nil, err
	}
	e.parsed = append(e.parsed, body)
	return &Template{env: e, src: src, body: body}, nil
}

// Names returns the variable names that the templates e has parsed so far
// (those rendered, and what they included or imported) read anywhere, on
// any branch and in macro bodies too, sorted and once each. A value whose
// name is not among them is read by no template.
func (e *Env) Names() []string {
	seen := map[string]bool{}
	for _, body := range e.parsed {
		walkStmtExprs(body, func(x expr) {
			if n, ok := x.(*nameExpr); ok {
				seen[n.name] = true
			}
		})
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// errNotFound is a template that is not in the file system.
var errNotFound = errors.New("file does not exist")

// load returns the template called name: a slash-separated path inside
// the file system.
func (e *Env) load(name string) (*Template, error) {
	if t, ok := e.cache[name]; ok {
		return t, nil
	}
	if !fs.ValidPath(name) || name == "." {
		return nil, fmt.Errorf("including %q: templates can only include files inside the manifest's directory", name)
	}
	if e.fsys == nil {
		return nil, fmt.Errorf("including %q: %w", name, errNotFound)
	}
	b, err := fs.ReadFile(e.fsys, name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			err = errNotFound
		}
		return nil, fmt.Errorf("including %q: %w", name, err)
	}
	t, err := e.Parse(name, string(b))
	if err != nil {
		return nil, err
	}
	e.cache[name] = t
	return t, nil
}

// Render renders t with values. With lines, it also returns, for each
// line of the output, the line of t that produced it: the line whose
// newline ends it or, for a line ended by a newline from elsewhere (a
// value, an include, a macro), the next such line's.
func (t *Template) Render(values map[string]any, lines bool) (string, []int, error) {
	root := &scope{vars: make(map[string]any, len(values))}
	for k, v := range values {
		root.vars[k] = FromGo(v)
	}
	r := &run{env: t.env, main: t.src, values: root}
	w := &writer{track: lines}
	ev := &evaluator{r: r, src: t.src, w: w}
	err := ev.body(t.body, root.child())
	if err != nil {
		return "", nil, err
	}
	out := w.b.String()
	if !lines {
		return out, nil, nil
	}
	return out, w.lineMap(len(t.src.lines)), nil
}

// run is one rendering.
type run struct {
	env    *Env
	main   *source
	values *scope
	depth  int
	steps  int // loop iterations so far
}

// maxSteps bounds the loop iterations of one rendering: a template that
// nests ranges to billions fails instead of running for hours.
const maxSteps = 5_000_000

// maxDepth bounds nested calls and includes (Python's recursion limit
// stops Jinja2 at about this depth).
const maxDepth = 500

type scope struct {
	vars   map[string]any
	parent *scope
}

func (s *scope) child() *scope { return &scope{vars: map[string]any{}, parent: s} }

func (s *scope) lookup(name string) (any, bool) {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

// writer collects output and, when tracking, the template line of each
// newline written by the main template's text.
type writer struct {
	b     strings.Builder
	track bool
	lines []int // per output line: the template line, or 0
	over  bool  // more than maxString was written
}

func (w *writer) text(s string, line int) {
	if w.b.Len()+len(s) > maxString {
		// the caller's next write fails: stop growing
		w.over = true
		return
	}
	if !w.track {
		w.b.WriteString(s)
		return
	}
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			w.b.WriteString(s)
			return
		}
		w.b.WriteString(s[:i+1])
		w.lines = append(w.lines, line)
		if line > 0 {
			line++
		}
		s = s[i+1:]
	}
}

func (w *writer) lineMap(last int) []int {
	out := append([]int(nil), w.lines...)
	if !strings.HasSuffix(w.b.String(), "\n") && w.b.Len() > 0 {
		out = append(out, 0)
	}
	next := last
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == 0 {
			out[i] = next
		} else {
			next = out[i]
		}
	}
	return out
}

// evaluator executes the statements of one template.
type evaluator struct {
	r   *run
	src *source
	w   *writer
}

func (ev *evaluator) pos(off int) Pos { return ev.src.pos(off) }

func (ev *evaluator) errAt(err error, off int) error { return at(err, ev.pos(off)) }

// with returns an evaluator writing to w.
func (ev *evaluator) with(w *writer) *evaluator {
	return &evaluator{r: ev.r, src: ev.src, w: w}
}

// capture runs fn writing into a new buffer and returns what it wrote.
func (ev *evaluator) capture(fn func(*evaluator) error) (string, error) {
	w := &writer{}
	if err := fn(ev.with(w)); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

func (ev *evaluator) body(body []stmt, sc *scope) error {
	for _, s := range body {
		if err := ev.stmt(s, sc); err != nil {
			return err
		}
		if ev.w.over {
			return ev.errAt(unsupportedf("an output of more than %d bytes", maxString), s.offset())
		}
	}
	return nil
}

func (ev *evaluator) stmt(s stmt, sc *scope) error {
	switch t := s.(type) {
	case *textStmt:
		line := 0
		if ev.src == ev.r.main {
			line = ev.pos(t.off).Line
			// the data's first newline is on the line the data starts on
			// only if the data starts there: find the line of each newline
		}
		ev.w.text(t.text, line)
	case *printStmt:
		v, err := ev.eval(t.x, sc)
		if err != nil {
			return err
		}
		out, err := printable(v)
		if err != nil {
			return ev.errAt(err, t.x.offset())
		}
		ev.w.text(out, 0)
	case *forStmt:
		return ev.forLoop(t, sc)
	case *ifStmt:
		for i, c := range t.conds {
			v, err := ev.eval(c, sc)
			if err != nil {
				return err
			}
			b, err := truth(v)
			if err != nil {
				return ev.errAt(err, c.offset())
			}
			if b {
				return ev.body(t.bodies[i], sc)
			}
		}
		if len(t.bodies) > len(t.conds) {
			return ev.body(t.bodies[len(t.conds)], sc)
		}
	case *setStmt:
		v, err := ev.eval(t.x, sc)
		if err != nil {
			return err
		}
		return ev.assign(t.target, v, sc)
	case *setBlockStmt:
		v, err := ev.filtered(t.body, t.filters, sc)
		if err != nil {
			return err
		}
		return ev.assign(t.target, v, sc)
	case *macroStmt:
		sc.vars[t.name] = &macro{name: t.name, def: t.m, scope: sc}
	case *callBlockStmt:
		caller := &macro{name: "caller", def: t.caller, scope: sc}
		v, err := ev.call(t.call, sc, caller)
		if err != nil {
			return err
		}
		if u, ok := v.(*Undefined); ok {
			return u.err()
		}
		ev.w.text(str(v), 0)
	case *filterBlockStmt:
		v, err := ev.filtered(t.body, t.filters, sc)
		if err != nil {
			return err
		}
		out, err := printable(v)
		if err != nil {
			return ev.errAt(err, t.off)
		}
		ev.w.text(out, 0)
	case *includeStmt:
		return ev.include(t, sc)
	case *importStmt:
		m, err := ev.importModule(t.template, t.withContext, sc, t.off)
		if err != nil {
			return err
		}
		sc.vars[t.target] = m
	case *fromImportStmt:
		m, err := ev.importModule(t.template, t.withContext, sc, t.off)
		if err != nil {
			return err
		}
		for _, n := range t.names {
			v, ok := m.exports.Get(n[0])
			if !ok {
				v = &Undefined{name: n[1], pos: ev.pos(t.off), hint: fmt.Sprintf("the template %q does not export the requested name %q", m.name, n[0])}
			}
			sc.vars[n[1]] = v
		}
	case *withStmt:
		inner := sc.child()
		for i, target := range t.targets {
			v, err := ev.eval(t.values[i], sc)
			if err != nil {
				return err
			}
			if err := ev.assign(target, v, inner); err != nil {
				return err
			}
		}
		return ev.body(t.body, inner)
	default:
		return fmt.Errorf("internal error: statement %T", s)
	}
	return nil
}

// filtered renders body in a scope of its own and passes the output
// through filters (a block set's or a filter block's).
func (ev *evaluator) filtered(body []stmt, filters []*filterExpr, sc *scope) (any, error) {
	out, err := ev.capture(func(c *evaluator) error { return c.body(body, sc.child()) })
	if err != nil {
		return nil, err
	}
	var v any = out
	for _, f := range filters {
		if v, err = ev.filter(f, v, sc); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// assign binds target (a name, tuple of names or namespace attribute).
func (ev *evaluator) assign(target expr, v any, sc *scope) error {
	switch t := target.(type) {
	case *nameExpr:
		sc.vars[t.name] = v
		return nil
	case *getattrExpr:
		n := t.obj.(*nameExpr)
		o, ok := sc.lookup(n.name)
		if !ok {
			o, ok = ev.global(n.name)
		}
		ns, isNS := o.(*namespace)
		if !ok || !isNS {
			return &Error{Pos: ev.pos(t.off), Msg: fmt.Sprintf("template: cannot assign attribute on non-namespace object %q", n.name)}
		}
		ns.attrs.Set(t.attr, v)
		return nil
	case *tupleExpr:
		if u, ok := v.(*Undefined); ok {
			return u.err()
		}
		items, err := iterate(v)
		if err != nil {
			return ev.errAt(err, t.off)
		}
		if len(items) != len(t.items) {
			if len(items) > len(t.items) {
				return ev.errAt(typeErrorf("too many values to unpack (expected %d)", len(t.items)), t.off)
			}
			return ev.errAt(typeErrorf("not enough values to unpack (expected %d, got %d)", len(t.items), len(items)), t.off)
		}
		for i, e := range t.items {
			if err := ev.assign(e, items[i], sc); err != nil {
				return err
			}
		}
		return nil
	}
	return &Error{Pos: ev.pos(target.offset()), Msg: "template: cannot assign to this expression"}
}

func (ev *evaluator) forLoop(t *forStmt, sc *scope) error {
	v, err := ev.eval(t.iter, sc)
	if err != nil {
		return err
	}
	items, err := iterate(v)
	if err != nil {
		return ev.errAt(err, t.iter.offset())
	}
	return ev.loop(t, items, sc, 0)
}

func (ev *evaluator) loop(t *forStmt, items []any, sc *scope, depth int) error {
	if t.cond != nil {
		var kept []any
		for _, it := range items {
			inner := sc.child()
			if err := ev.assign(t.target, it, inner); err != nil {
				return err
			}
			c, err := ev.eval(t.cond, inner)
			if err != nil {
				return err
			}
			b, err := truth(c)
			if err != nil {
				return ev.errAt(err, t.cond.offset())
			}
			if b {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		return ev.body(t.els, sc)
	}
	lc := &loopContext{items: items, depth: depth}
	if t.recursive {
		lc.recurse = func(e *evaluator, v any) (any, error) {
			sub, err := iterate(v)
			if err != nil {
				return nil, err
			}
			if err := e.r.enter(); err != nil {
				return nil, err
			}
			defer e.r.leave()
			return e.capture(func(c *evaluator) error { return c.loop(t, sub, sc, depth+1) })
		}
	}
	for i, it := range items {
		if ev.r.steps++; ev.r.steps > maxSteps {
			return ev.errAt(unsupportedf("a rendering of more than %d loop iterations", maxSteps), t.off)
		}
		lc.index0 = i
		inner := sc.child()
		inner.vars["loop"] = lc
		if err := ev.assign(t.target, it, inner); err != nil {
			return err
		}
		if err := ev.body(t.body, inner); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) enter() error {
	r.depth++
	if r.depth > maxDepth {
		return typeErrorf("template: maximum recursion depth exceeded")
	}
	return nil
}

func (r *run) leave() { r.depth-- }

// templateName evaluates an include or import's template name (a list
// for include: the first that exists) relative to nothing: names are
// paths inside the file system.
func (ev *evaluator) templateNames(x expr, sc *scope) ([]string, error) {
	v, err := ev.eval(x, sc)
	if err != nil {
		return nil, err
	}
	switch n := v.(type) {
	case string:
		return []string{n}, nil
	case *List, tuple:
		items, _ := seqItems(n)
		var names []string
		for _, i := range items {
			s, ok := i.(string)
			if !ok {
				return nil, ev.errAt(typeErrorf("a template name must be a string, not %s", typeName(i)), x.offset())
			}
			names = append(names, s)
		}
		return names, nil
	case *Undefined:
		return nil, n.err()
	}
	return nil, ev.errAt(typeErrorf("a template name must be a string, not %s", typeName(v)), x.offset())
}

func (ev *evaluator) loadAt(name string, off int) (*Template, error) {
	clean := name
	if !strings.HasPrefix(name, "/") {
		clean = path.Clean(name)
	}
	t, err := ev.r.env.load(clean)
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			return nil, err
		}
		if strings.Contains(err.Error(), "only include files inside") {
			err = fmt.Errorf("including %q: templates can only include files inside the manifest's directory", name)
		}
		return nil, &Error{Pos: ev.pos(off), Msg: err.Error()}
	}
	return t, nil
}

func (ev *evaluator) include(t *includeStmt, sc *scope) error {
	names, err := ev.templateNames(t.template, sc)
	if err != nil {
		return err
	}
	var tmpl *Template
	var firstErr error
	for _, n := range names {
		tmpl, err = ev.loadAt(n, t.template.offset())
		if err == nil {
			break
		}
		if !errors.Is(err, errNotFound) && !strings.HasSuffix(err.Error(), errNotFound.Error()) {
			return err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if tmpl == nil {
		if t.ignoreMissing {
			return nil
		}
		if len(names) > 1 {
			return &Error{Pos: ev.pos(t.template.offset()), Msg: fmt.Sprintf("including %s: none exists", strings.Join(names, ", "))}
		}
		return firstErr
	}
	if err := ev.r.enter(); err != nil {
		return ev.errAt(err, t.off)
	}
	defer ev.r.leave()
	parent := sc
	if !t.withContext {
		parent = &scope{vars: map[string]any{}}
	}
	inc := &evaluator{r: ev.r, src: tmpl.src, w: ev.w}
	return inc.body(tmpl.body, parent.child())
}

func (ev *evaluator) importModule(x expr, withContext bool, sc *scope, off int) (*module, error) {
	names, err := ev.templateNames(x, sc)
	if err != nil {
		return nil, err
	}
	tmpl, err := ev.loadAt(names[0], x.offset())
	if err != nil {
		return nil, err
	}
	if err := ev.r.enter(); err != nil {
		return nil, ev.errAt(err, off)
	}
	defer ev.r.leave()
	parent := &scope{vars: map[string]any{}}
	if withContext {
		parent = sc
	}
	top := parent.child()
	m := &evaluator{r: ev.r, src: tmpl.src, w: &writer{}}
	if err := m.body(tmpl.body, top); err != nil {
		return nil, err
	}
	mod := &module{name: tmpl.src.name, exports: NewDict()}
	for _, s := range tmpl.body {
		var names []string
		switch st := s.(type) {
		case *macroStmt:
			names = []string{st.name}
		case *setStmt:
			walkTargets(st.target, func(n string) { names = append(names, n) })
		case *setBlockStmt:
			walkTargets(st.target, func(n string) { names = append(names, n) })
		}
		for _, n := range names {
			if v, ok := top.vars[n]; ok && !strings.HasPrefix(n, "_") {
				mod.exports.Set(n, v)
			}
		}
	}
	return mod, nil
}

func walkTargets(x expr, fn func(string)) {
	switch t := x.(type) {
	case *nameExpr:
		fn(t.name)
	case *tupleExpr:
		for _, i := range t.items {
			walkTargets(i, fn)
		}
	}
}
