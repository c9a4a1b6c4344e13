package manifest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/internal/regfile"
)

// ModuleFile is the manifest of a module directory: use: DIR reads
// DIR/module.yml, and a registry module is such a directory.
const ModuleFile = "module.yml"

// ModuleResolver fetches the modules that use: steps name by a registry
// source, oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:….
// Package module implements it.
type ModuleResolver interface {
	// ResolveModule returns the local directory holding the module
	// source names (with its ModuleFile), and the digest it was
	// fetched by.
	ResolveModule(ctx context.Context, source string) (ResolvedModule, error)
}

// ResolvedModule is a registry module made local.
type ResolvedModule struct {
	Dir    string // absolute; holds ModuleFile and the files it copies
	Digest string // "sha256:…", the digest of the module's OCI manifest
}

// UsedModule is a module a build inlined.
type UsedModule struct {
	Source string // as written after use:
	File   string // the module's manifest, as errors name it
	// Digest is a registry module's digest; "" for a path.
	Digest string `json:",omitempty"`
	Pos    Pos    // of the use: step
}

// IsRegistrySource reports whether a use: source names a module in a
// registry (oci://…) rather than a path.
func IsRegistrySource(source string) bool {
	return strings.HasPrefix(source, "oci://")
}

// Param is a parameter a module declares.
type Param struct {
	Name        string
	Type        string // string, int, bool, list or map
	Default     any    `json:",omitempty"` // nil: none
	Required    bool   `json:",omitempty"`
	Description string `json:",omitempty"`
	Enum        []any  `json:",omitempty"`
}

// ModuleInfo is what a module's first document declares.
type ModuleInfo struct {
	Name        string // the prefix of its steps' names
	Description string `json:",omitempty"`
	Params      []Param
}

// paramTypes are the types a parameter may have.
var paramTypes = []string{"string", "int", "bool", "list", "map"}

// ReadModule reads the first document of the module file: its name,
// description and parameters (for kiln module doc and push). The file is
// read inside its directory, and only if it is a regular file (see
// package regfile).
func ReadModule(file string) (*ModuleInfo, error) {
	data, err := regfile.ReadFile(filepath.Dir(file), filepath.Base(file))
	if err != nil {
		return nil, fmt.Errorf("reading module: %w", err)
	}
	docs, err := split(file, string(data))
	if err != nil {
		return nil, err
	}
	return readModuleInfo(file, docs.first)
}

// defaultModuleName names a module after its file (or, for a
// module.yml, its directory), without extension.
func defaultModuleName(file string) string {
	base := filepath.Base(file)
	if base == ModuleFile {
		base = filepath.Base(filepath.Dir(file))
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func readModuleInfo(file, doc string) (*ModuleInfo, error) {
	info := &ModuleInfo{Name: defaultModuleName(file)}
	n, err := firstNode(file, doc)
	if n == nil || err != nil {
		return info, err
	}
	d := &decoder{file: file}
	pairs, err := d.mapping(n, "a module's first document", "name", "description", "params")
	if err != nil {
		return nil, err
	}
	for _, p := range pairs {
		switch p.key {
		case "name":
			if info.Name, err = d.nonEmpty(p.v, "name"); err != nil {
				return nil, err
			}
			if !stageNameRE.MatchString(info.Name) {
				return nil, Errorf(d.pos(p.v), "module name %q: use letters, digits, '.', '_' and '-'", info.Name)
			}
		case "description":
			if info.Description, err = d.str(p.v, "description"); err != nil {
				return nil, err
			}
		case "params":
			if isNull(p.v) {
				continue
			}
			ps, err := d.mapping(p.v, "params")
			if err != nil {
				return nil, err
			}
			for _, pp := range ps {
				param, err := d.param(pp)
				if err != nil {
					return nil, err
				}
				info.Params = append(info.Params, param)
			}
		}
	}
	return info, nil
}

// param reads one parameter's declaration.
func (d *decoder) param(pp pair) (Param, error) {
	p := Param{Name: pp.key}
	if !identRE.MatchString(p.Name) || p.Name == "host" || p.Name == "env" {
		return p, Errorf(d.pos(pp.k), "parameter name %q: use letters, digits and _ (host and env are reserved)", p.Name)
	}
	what := fmt.Sprintf("parameter %q", p.Name)
	fields, err := d.mapping(pp.v, what, "default", "required", "description", "type", "enum")
	if err != nil {
		return p, err
	}
	var def, enum *yaml.Node
	for _, f := range fields {
		switch f.key {
		case "default":
			def = f.v
		case "required":
			if f.v.Tag != "!!bool" {
				return p, d.typeError(f.v, what+" required", "true or false")
			}
			p.Required = f.v.Value == "true"
		case "description":
			if p.Description, err = d.str(f.v, what+" description"); err != nil {
				return p, err
			}
		case "type":
			if p.Type, err = d.str(f.v, what+" type"); err != nil {
				return p, err
			}
			if !slices.Contains(paramTypes, p.Type) {
				return p, Errorf(d.pos(f.v), "%s: type %q: use %s", what, p.Type, strings.Join(paramTypes, ", "))
			}
		case "enum":
			enum = f.v
		}
	}
	if p.Type == "" {
		p.Type = "string"
		if def != nil {
			p.Type = nodeType(def)
		}
	}
	if def != nil && !isNull(def) {
		if p.Default, err = d.paramValue(p, def, what+" default"); err != nil {
			return p, err
		}
	}
	if enum != nil {
		items, err := d.seq(enum, what+" enum")
		if err != nil {
			return p, err
		}
		for _, it := range items {
			v, err := d.paramValue(p, it, "an item of "+what+" enum")
			if err != nil {
				return p, err
			}
			p.Enum = append(p.Enum, v)
		}
		if p.Default != nil && !inEnum(p.Enum, p.Default) {
			return p, Errorf(d.pos(def), "%s: the default %v is not one of its enum", what, p.Default)
		}
	}
	return p, nil
}

// nodeType is the parameter type of a YAML value.
func nodeType(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "list"
	case n.Kind == yaml.MappingNode:
		return "map"
	case n.Tag == "!!int":
		return "int"
	case n.Tag == "!!bool":
		return "bool"
	}
	return "string"
}

var typeNames = map[string]string{"string": "a string", "int": "an integer", "bool": "true or false", "list": "a list", "map": "a map"}

// paramValue checks that n has p's type and returns its value. A string
// parameter takes any scalar, as written (3.12 is "3.12").
func (d *decoder) paramValue(p Param, n *yaml.Node, what string) (any, error) {
	ok := false
	switch p.Type {
	case "string":
		ok = n.Kind == yaml.ScalarNode && !isNull(n)
		if ok {
			return n.Value, nil
		}
	default:
		ok = nodeType(n) == p.Type && !isNull(n)
	}
	if !ok {
		return nil, d.typeError(n, what, typeNames[p.Type])
	}
	return nodeValue(n, d.file, false)
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if fmt.Sprint(e) == fmt.Sprint(v) {
			return true
		}
	}
	return false
}

// useStep is a use: step as decoded, until inlining replaces it.
type useStep struct {
	d      *decoder // of the file it is written in
	source string
	with   *yaml.Node // nil without with:
	pos    Pos        // of the step
}

// stepUse is the kind of a use: step until it is inlined; no Build
// returned holds one.
const stepUse StepKind = "use"

var useKeys = []string{"use", "with"}

// use decodes a use: step.
func (d *decoder) use(n *yaml.Node, pos Pos) (*Step, error) {
	ps, err := d.mapping(n, "a use: step", useKeys...)
	if err != nil {
		return nil, err
	}
	u := &useStep{d: d, pos: pos}
	for _, p := range ps {
		switch p.key {
		case "use":
			if u.source, err = d.nonEmpty(p.v, "use"); err != nil {
				return nil, err
			}
		case "with":
			if !isNull(p.v) {
				if p.v.Kind != yaml.MappingNode {
					return nil, d.typeError(p.v, "with", "a map of the module's parameters")
				}
				u.with = p.v
			}
		}
	}
	if u.source == "" {
		return nil, Errorf(pos, "with: needs use: SOURCE (the module: a path or oci://REGISTRY/REPO:TAG)")
	}
	st := &Step{Kind: stepUse, Name: "use: " + u.source, Pos: pos}
	if d.uses == nil {
		d.uses = map[*Step]*useStep{}
	}
	d.uses[st] = u
	return st, nil
}

// inliner replaces use: steps by the steps of their modules.
type inliner struct {
	b     *Build
	opts  Options
	chain []string // the modules being inlined, outermost first, by identity
	names []string // the same, as messages name them
	out   strings.Builder
}

// module is a module read, rendered and decoded, before inlining.
type module struct {
	info    *ModuleInfo
	file    string // as errors name it
	dir     string // its directory: where its relative paths start
	root    string // the directory its paths must stay in
	rel     string // file, relative to root
	remote  bool   // from a registry: its files are outside the context
	values  map[string]any
	steps   []*Step
	tests   []*Test
	env     []KV
	toolbox []string
	// services are the module's services, and those of the modules it
	// uses, which the using stage gets.
	services []*Service
}

// expandModules inlines the use: steps of every stage of b.
func (d *decoder) expandModules(ctx context.Context, b *Build, opts Options) (string, error) {
	if len(d.uses) == 0 {
		return "", nil
	}
	in := &inliner{b: b, opts: opts}
	abs, err := filepath.Abs(d.file)
	if err != nil {
		return "", err
	}
	in.chain, in.names = []string{abs}, []string{d.file}
	for _, s := range b.Stages {
		got, err := in.expand(ctx, s.Steps, d, filepath.Dir(d.file), b.Context)
		if err != nil {
			return "", err
		}
		s.Steps = got.steps
		s.Tests = uniqueTests(append(s.Tests, got.tests...))
		for _, t := range got.toolbox {
			if !slices.Contains(s.Toolbox, t) {
				s.Toolbox = append(s.Toolbox, t)
			}
		}
		if s.Services, err = addServices(s.Services, got.services); err != nil {
			return "", err
		}
		// The stage's tests and run steps may name its modules'
		// services, and its modules' tests and steps may name its own.
		if err := checkServices(s); err != nil {
			return "", err
		}
	}
	return in.out.String(), nil
}

// addServices adds more services (a module's) to have, each name once.
func addServices(have, more []*Service) ([]*Service, error) {
	for _, sv := range more {
		if i := slices.IndexFunc(have, func(o *Service) bool { return o.Name == sv.Name }); i >= 0 {
			return nil, Errorf(sv.Pos, "service %q is declared twice: here and at %s (a service's name is its host name in the pod: rename one)", sv.Name, have[i].Pos)
		}
		have = append(have, sv)
	}
	return have, nil
}

// uniqueTests numbers the repeats of a test name (a module used twice):
// "user/check", "user/check-2".
func uniqueTests(ts []*Test) []*Test {
	seen := map[string]int{}
	for _, t := range ts {
		seen[t.Name]++
		if n := seen[t.Name]; n > 1 {
			t.Name = fmt.Sprintf("%s-%d", t.Name, n)
		}
	}
	return ts
}

// expand inlines the use: steps among steps, which d decoded; relative
// sources start at dir and must stay in root.
func (in *inliner) expand(ctx context.Context, steps []*Step, d *decoder, dir, root string) (*module, error) {
	out := &module{}
	for _, st := range steps {
		if st.Kind != stepUse {
			out.steps = append(out.steps, st)
			continue
		}
		m, err := in.inline(ctx, d.uses[st], dir, root)
		if err != nil {
			return nil, err
		}
		out.steps = append(out.steps, m.steps...)
		out.tests = append(out.tests, m.tests...)
		out.toolbox = append(out.toolbox, m.toolbox...)
		if out.services, err = addServices(out.services, m.services); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inline reads the module u uses, with u's parameters, and returns its
// steps, tests and toolbox ready for the caller's stage.
func (in *inliner) inline(ctx context.Context, u *useStep, dir, root string) (*module, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, id, err := in.locate(ctx, u, dir, root)
	if err != nil {
		return nil, err
	}
	if i := slices.Index(in.chain, id); i >= 0 {
		path := append(slices.Clone(in.names[i:]), m.file)
		return nil, Errorf(u.pos, "module cycle: %s: a module cannot use itself, directly or through other modules", strings.Join(path, " → "))
	}
	in.chain, in.names = append(in.chain, id), append(in.names, m.file)
	defer func() { in.chain, in.names = in.chain[:len(in.chain)-1], in.names[:len(in.names)-1] }()

	data, err := regfile.ReadFile(m.root, m.rel)
	if err != nil {
		return nil, &Error{Pos: u.pos, Msg: fmt.Sprintf("use %s: reading the module", u.source), Err: err}
	}
	docs, err := split(m.file, string(data))
	if err != nil {
		return nil, calledFrom(err, u.pos)
	}
	if m.info, err = readModuleInfo(m.file, docs.first); err != nil {
		return nil, calledFrom(err, u.pos)
	}
	h := defaultHost()
	if in.opts.Host != nil {
		h = *in.opts.Host
	}
	if m.values, err = u.values(m, h); err != nil {
		return nil, err
	}
	if err := in.decode(ctx, m, u, docs); err != nil {
		return nil, err
	}
	return m, nil
}

// locate finds the module u names: a path from dir that must stay in
// root, or a registry source. It returns the module (file, dir, root)
// and its identity, for cycles.
func (in *inliner) locate(ctx context.Context, u *useStep, dir, root string) (*module, string, error) {
	if IsRegistrySource(u.source) {
		if in.opts.Modules == nil {
			return nil, "", Errorf(u.pos, "use %s: registry modules need kiln's module resolver (kiln build, render and graph have it)", u.source)
		}
		r, err := in.opts.Modules.ResolveModule(ctx, u.source)
		if err != nil {
			return nil, "", &Error{Pos: u.pos, Msg: "use " + u.source, Err: err}
		}
		file := filepath.Join(r.Dir, ModuleFile)
		m := &module{file: file, dir: r.Dir, root: r.Dir, rel: ModuleFile, remote: true}
		in.b.Modules = append(in.b.Modules, UsedModule{Source: u.source, File: file, Digest: r.Digest, Pos: u.pos})
		return m, "oci:" + r.Digest, nil
	}
	if filepath.IsAbs(u.source) || strings.Contains(u.source, "://") {
		return nil, "", Errorf(u.pos, "use %s: a module is a path relative to the manifest, inside the build context, or oci://REGISTRY/REPO:TAG", u.source)
	}
	p := filepath.Join(dir, u.source)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) && filepath.Ext(p) == "" {
		// use: ./lib/bad is lib/bad.yml (or .yaml) when lib/bad is not there
		for _, ext := range []string{".yml", ".yaml"} {
			if _, err := os.Lstat(p + ext); err == nil {
				p += ext
				break
			}
		}
	}
	absP, err := filepath.Abs(p)
	if err != nil {
		return nil, "", err
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, "", err
	}
	outside := Errorf(u.pos, "use %s: the module %s is outside the build context: move it under the context directory, or publish it (kiln module push) and use oci://REGISTRY/REPO:TAG", u.source, p)
	if !within(absRoot, absP) {
		return nil, "", outside
	}
	// nor through a symbolic link
	if realRoot, err := filepath.EvalSymlinks(absRoot); err == nil {
		if realP, err := filepath.EvalSymlinks(absP); err == nil && !within(realRoot, realP) {
			return nil, "", outside
		}
	}
	fi, err := os.Stat(absP)
	if errors.Is(err, os.ErrNotExist) {
		tried := p
		if filepath.Ext(p) == "" {
			tried += ", nor " + p + ".yml"
		}
		return nil, "", Errorf(u.pos, "use %s: no module at %s (a module is a YAML file, or a directory holding %s)", u.source, tried, ModuleFile)
	}
	if err != nil {
		return nil, "", &Error{Pos: u.pos, Msg: "use " + u.source, Err: err}
	}
	if fi.IsDir() {
		p, absP = filepath.Join(p, ModuleFile), filepath.Join(absP, ModuleFile)
	}
	rel, err := filepath.Rel(absRoot, absP)
	if err != nil {
		return nil, "", &Error{Pos: u.pos, Msg: "use " + u.source, Err: err}
	}
	// a path in a registry module is in that module's directory
	m := &module{file: p, dir: filepath.Dir(p), root: root, rel: rel, remote: root != in.b.Context}
	in.b.Modules = append(in.b.Modules, UsedModule{Source: u.source, File: p, Pos: u.pos})
	return m, absP, nil
}

// within reports whether the absolute path p is dir or below it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// calledFrom puts the use: step at pos as the caller of an *Error of a
// module that has none.
func calledFrom(err error, pos Pos) error {
	var e *Error
	if errors.As(err, &e) && e.Pos.Caller == nil && e.Pos.File != "" {
		e.Pos.Caller = &pos
	}
	return err
}

// values checks u's with: against m's parameters and returns the
// values m renders with: the defaults, with:, and host.
func (u *useStep) values(m *module, h Host) (map[string]any, error) {
	d := u.d
	values := map[string]any{}
	byName := map[string]Param{}
	var names []string
	for _, p := range m.info.Params {
		byName[p.Name] = p
		names = append(names, p.Name)
		if p.Default != nil {
			values[p.Name] = p.Default
		}
	}
	given := map[string]bool{}
	if u.with != nil {
		ps, err := d.mapping(u.with, "with")
		if err != nil {
			return nil, err
		}
		for _, kv := range ps {
			p, ok := byName[kv.key]
			if !ok {
				known := "it has none"
				if len(names) > 0 {
					known = "its parameters are " + strings.Join(names, ", ")
				}
				return nil, Errorf(d.pos(kv.k), "module %s has no parameter %q: %s", m.file, kv.key, known)
			}
			v, err := d.paramValue(p, kv.v, fmt.Sprintf("module %s: parameter %q", m.file, p.Name))
			if err != nil {
				return nil, err
			}
			if p.Enum != nil && !inEnum(p.Enum, v) {
				opts := make([]string, len(p.Enum))
				for i, e := range p.Enum {
					opts[i] = fmt.Sprint(e)
				}
				return nil, Errorf(d.pos(kv.v), "module %s: parameter %q must be one of %s, not %v", m.file, p.Name, strings.Join(opts, ", "), v)
			}
			values[p.Name] = v
			given[p.Name] = true
		}
	}
	for _, p := range m.info.Params {
		if p.Required && !given[p.Name] {
			return nil, Errorf(u.pos, "module %s: parameter %q is required: set it under with:", m.file, p.Name)
		}
	}
	values["host"] = hostValue(h)
	return values, nil
}

var moduleKeys = []string{"steps", "tests", "env", "toolbox", "services"}

// decode renders m's second document with m.values, decodes it, and
// readies its steps for the caller: named after m, with sources the
// caller's build can read, and m's own use: steps inlined.
func (in *inliner) decode(ctx context.Context, m *module, u *useStep, docs documents) error {
	r := newRenderer(regfile.FS(m.dir), m.dir, m.values)
	r.module = true
	out, lines, err := r.render(m.file, docs.offset, docs.second, true)
	if err != nil {
		return calledFrom(err, u.pos)
	}
	fmt.Fprintf(&in.out, "\n# module %s (%s), used at %s:\n", m.info.Name, m.file, u.pos)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Fprintf(&in.out, "#   %s\n", l)
	}
	caller := u.pos
	d := &decoder{
		file:     m.file,
		offset:   docs.offset,
		lineMap:  lines,
		rendered: strings.Split(out, "\n"),
		template: strings.Split(docs.second, "\n"),
		via:      &caller,
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		return yamlError(err, d)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return Errorf(d.at(1, 1), "the module is empty: it needs steps:")
	}
	ps, err := d.mapping(doc.Content[0], "a module", moduleKeys...)
	if err != nil {
		return err
	}
	for _, p := range ps {
		switch p.key {
		case "steps":
			if isNull(p.v) {
				continue
			}
			items, err := d.seq(p.v, "steps")
			if err != nil {
				return err
			}
			for _, it := range items {
				st, err := d.step(it)
				if err != nil {
					return err
				}
				m.steps = append(m.steps, st)
			}
		case "tests":
			if isNull(p.v) {
				continue
			}
			if m.tests, err = d.tests(p.v, "tests"); err != nil {
				return err
			}
		case "env":
			if m.env, err = d.kvs(p.v, "env"); err != nil {
				return err
			}
		case "services":
			if m.services, err = d.services(p.v); err != nil {
				return err
			}
		case "toolbox":
			if m.toolbox, err = d.strList(p.v, "toolbox"); err != nil {
				return err
			}
			for i, t := range m.toolbox {
				if err := inContext(t); err != nil {
					return &Error{Pos: d.pos(p.v.Content[i]), Msg: fmt.Sprintf("toolbox %q", t), Err: err}
				}
			}
		}
	}
	for _, st := range m.steps {
		if st.Kind != stepUse {
			if err := in.relocate(m, st); err != nil {
				return err
			}
		}
	}
	for i, t := range m.toolbox {
		if m.toolbox[i], err = in.place(m, t); err != nil {
			return err
		}
	}
	got, err := in.expand(ctx, m.steps, d, m.dir, m.root)
	if err != nil {
		return err
	}
	steps, tests, toolbox := got.steps, got.tests, got.toolbox
	if m.services, err = addServices(m.services, got.services); err != nil {
		return err
	}
	for _, st := range steps {
		st.Name = m.info.Name + ": " + st.Name
		if st.Kind == StepRun && len(m.env) > 0 {
			st.RunEnv = append(slices.Clone(m.env), st.RunEnv...)
		}
	}
	for _, t := range m.tests {
		t.Name = m.info.Name + "/" + t.Name
	}
	m.steps = steps
	m.tests = append(m.tests, tests...)
	m.toolbox = append(m.toolbox, toolbox...)
	return nil
}

// relocate makes the sources of a module's own copy and template step
// readable by the caller's build: a path module's become paths in the
// build context; a registry module's stay in its directory (Dir).
// Template steps render with the module's values.
func (in *inliner) relocate(m *module, st *Step) error {
	switch {
	case st.Kind == StepCopy && st.Copy.From == "":
		if m.remote {
			st.Copy.Dir = m.dir
			return nil
		}
		var err error
		if st.Copy.Src != "" {
			if st.Copy.Src, err = in.place(m, st.Copy.Src); err != nil {
				return err
			}
		}
		for i, s := range st.Copy.Sources {
			if st.Copy.Sources[i], err = in.place(m, s); err != nil {
				return err
			}
		}
	case st.Kind == StepTemplate:
		st.Template.Values = m.values
		if m.remote {
			st.Template.Dir = m.dir
			return nil
		}
		var err error
		st.Template.Src, err = in.place(m, st.Template.Src)
		return err
	}
	return nil
}

// place returns a path of module m (relative to its directory) as the
// build reads it: relative to the build context for a path module, and
// absolute for a registry module.
func (in *inliner) place(m *module, p string) (string, error) {
	if m.remote {
		return filepath.Join(m.dir, p), nil
	}
	abs, err := filepath.Abs(filepath.Join(m.dir, p))
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(in.b.Context, abs)
	if err != nil {
		return "", err
	}
	rel = path.Clean(filepath.ToSlash(rel))
	if strings.HasSuffix(p, "/") {
		rel += "/"
	}
	return rel, nil
}
