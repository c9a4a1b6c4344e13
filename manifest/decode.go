package manifest

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/image/platform"
)

// decoder walks the rendered manifest's YAML nodes into the IR. It maps
// every position of the rendered text back to the template line that
// produced it.
type decoder struct {
	file     string
	offset   int      // lines of the file before the template
	lineMap  []int    // rendered line (0-based) → template line (1-based)
	rendered []string // the rendered lines
	template []string // the template's lines

	targetPos Pos // where target: was written
	// dockerfiles are the stages built from a Dockerfile, for
	// expandDockerfiles.
	dockerfiles []dockerfileRef
	// via, in a module, is the position of the use: step that inlined
	// it: the Caller of every position.
	via *Pos
	// uses are the use: steps decoded, for expandModules.
	uses map[*Step]*useStep
}

// pos returns the manifest position of a node of the rendered text.
func (d *decoder) pos(n *yaml.Node) Pos {
	return d.at(n.Line, n.Column)
}

// at maps a 1-based line and column of the rendered text to the manifest.
func (d *decoder) at(line, col int) Pos {
	if d.lineMap == nil || line < 1 || line > len(d.lineMap) {
		return Pos{File: d.file, Line: d.offset + line, Col: col, Caller: d.via}
	}
	t := d.lineMap[line-1]
	if t >= 1 && t <= len(d.template) && line <= len(d.rendered) {
		col = mapCol(d.rendered[line-1], d.template[t-1], col)
	}
	return Pos{File: d.file, Line: d.offset + t, Col: col, Caller: d.via}
}

// mapCol maps a column of a rendered line to its template line: a column
// in the text the two lines share at their start or end maps exactly;
// one in between (in the output of a {{ }}) maps to where the two lines
// begin to differ, usually the {{.
func mapCol(rendered, tmpl string, col int) int {
	r, t := []rune(rendered), []rune(tmpl)
	c := col - 1
	p := 0
	for p < len(r) && p < len(t) && r[p] == t[p] {
		p++
	}
	if c <= p {
		return col
	}
	s := 0
	for s < len(r)-p && s < len(t)-p && r[len(r)-1-s] == t[len(t)-1-s] {
		s++
	}
	if c >= len(r)-s {
		return len(t) - (len(r) - c) + 1
	}
	return p + 1
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml.v3 error on the text d read (d.rendered) into
// an *Error at the manifest's line and column, with a one-line hint for
// the common mistakes (see yamlHint).
func yamlError(err error, d *decoder) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{Pos: Pos{File: d.file, Caller: d.via}, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	if strings.HasPrefix(m[2], "did not find expected") || strings.HasPrefix(m[2], "found undefined tag handle") {
		// yaml.v3 prints the 0-based line of its parser's (not its
		// scanner's) errors: these messages are the parser's
		line++
	}
	text := func(l int) string {
		if l >= 1 && l <= len(d.rendered) {
			return d.rendered[l-1]
		}
		return ""
	}
	col, hint := yamlHint(m[2], text(line))
	if hint == "" && line > 1 {
		// The parser may see the mistake only at the next line.
		if c, h := yamlHint(m[2], text(line-1)); h != "" {
			line, col, hint = line-1, c, h
		}
	}
	msg = "invalid YAML: " + m[2]
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return &Error{Pos: d.at(line, col), Msg: msg}
}

// yamlHint returns the column of line, the text yaml.v3 failed on with
// message msg, where the mistake most likely is, and a hint for the
// common ones: an unquoted ": " in a plain value, a tab in the
// indentation, and a value starting with { (a flow map, often a {{ that
// was meant as text). The column is otherwise the line's first non-blank
// character.
func yamlHint(msg, line string) (int, string) {
	first := len(line) - len(strings.TrimLeft(line, " \t")) + 1
	if i := strings.IndexByte(line, '\t'); i >= 0 && i < first {
		return i + 1, "YAML indents with spaces, not tabs"
	}
	// The value: after "- " and "key: ".
	v := first - 1
	for strings.HasPrefix(line[v:], "- ") {
		v += 2
		for v < len(line) && line[v] == ' ' {
			v++
		}
	}
	if k := strings.Index(line[v:], ": "); k >= 0 && !strings.ContainsAny(line[v:v+k], "\"'{[") {
		v += k + 2
		for v < len(line) && line[v] == ' ' {
			v++
		}
	}
	value := line[v:]
	switch {
	case strings.HasPrefix(msg, "mapping values are not allowed"):
		if k := strings.Index(value, ": "); k >= 0 {
			return v + k + 1, `a plain value cannot hold ": ": quote the value ('…') or use a block scalar (|)`
		}
		if strings.HasSuffix(value, ":") {
			return v + len(value), `a plain value cannot end in ":": quote the value`
		}
	case strings.HasPrefix(value, "{") && !strings.HasPrefix(msg, "found character"):
		return v + 1, "a value starting with { is a YAML flow map: quote it (\"{{ … }}\") if it is text"
	case strings.HasPrefix(msg, "found character that cannot start any token") && value != "":
		if strings.ContainsRune("@`%", rune(value[0])) {
			return v + 1, fmt.Sprintf("a plain value cannot start with %q: quote the value", value[0])
		}
	}
	return first, ""
}

// pair is a key of a YAML map and its value.
type pair struct {
	key  string
	k, v *yaml.Node
}

// kindName names a node's type for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "empty"
	}
	return "a string"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (d *decoder) typeError(n *yaml.Node, what, want string) error {
	return Errorf(d.pos(n), "%s must be %s, not %s", what, want, kindName(n))
}

// mapping returns the pairs of a map node, rejecting duplicate and
// unknown keys.
func (d *decoder) mapping(n *yaml.Node, what string, known ...string) ([]pair, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.typeError(n, what, "a map")
	}
	var ps []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, Errorf(d.pos(k), "a key in %s must be a string, not %s", what, kindName(k))
		}
		if k.Value == "<<" {
			return nil, Errorf(d.pos(k), "merge keys (<<) are not supported")
		}
		if seen[k.Value] {
			return nil, Errorf(d.pos(k), "duplicate key %q in %s", k.Value, what)
		}
		seen[k.Value] = true
		if known != nil && !contains(known, k.Value) {
			return nil, Errorf(d.pos(k), "unknown key %q in %s: known keys are %s", k.Value, what, strings.Join(known, ", "))
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		ps = append(ps, pair{key: k.Value, k: k, v: v})
	}
	return ps, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// str returns a scalar as a string (a number or a boolean as written).
func (d *decoder) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", d.typeError(n, what, "a string")
	}
	return n.Value, nil
}

// nonEmpty is str for values that may not be "".
func (d *decoder) nonEmpty(n *yaml.Node, what string) (string, error) {
	s, err := d.str(n, what)
	if err == nil && s == "" {
		err = Errorf(d.pos(n), "%s must not be empty", what)
	}
	return s, err
}

func (d *decoder) seq(n *yaml.Node, what string) ([]*yaml.Node, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.typeError(n, what, "a list")
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		if c.Kind == yaml.AliasNode {
			c = c.Alias
		}
		items[i] = c
	}
	return items, nil
}

func (d *decoder) strList(n *yaml.Node, what string) ([]string, error) {
	items, err := d.seq(n, what)
	if err != nil {
		return nil, err
	}
	l := make([]string, 0, len(items))
	for _, c := range items {
		s, err := d.str(c, "an item of "+what)
		if err != nil {
			return nil, err
		}
		l = append(l, s)
	}
	return l, nil
}

// kvs returns a map of strings in the order written.
func (d *decoder) kvs(n *yaml.Node, what string) ([]KV, error) {
	ps, err := d.mapping(n, what)
	if err != nil {
		return nil, err
	}
	l := make([]KV, 0, len(ps))
	for _, p := range ps {
		v, err := d.str(p.v, what+" "+p.key)
		if err != nil {
			return nil, err
		}
		l = append(l, KV{Key: p.key, Value: v})
	}
	return l, nil
}

// command reads a string (shell form) or a list of strings (exec form).
func (d *decoder) command(n *yaml.Node, what string) (Command, error) {
	if n.Kind == yaml.SequenceNode {
		l, err := d.strList(n, what)
		if err != nil {
			return Command{}, err
		}
		if len(l) == 0 {
			return Command{}, Errorf(d.pos(n), "%s must not be empty", what)
		}
		return Command{Exec: l}, nil
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return Command{}, d.typeError(n, what, "a string (shell form) or a list of strings (exec form)")
	}
	if strings.TrimSpace(n.Value) == "" {
		return Command{}, Errorf(d.pos(n), "%s must not be empty", what)
	}
	return Command{Shell: n.Value}, nil
}

var topKeys = []string{"from", "language", "env", "workdir", "user", "toolbox", "steps", "install", "tests", "script", "services", "image", "stages", "target", "platforms"}

// stageKeys are the keys a stage has; at the top level they make the
// stage "main".
var stageKeys = []string{"from", "language", "env", "workdir", "user", "toolbox", "steps", "install", "tests", "script", "services"}

func (d *decoder) decode(out string) (*Build, error) {
	dec := yaml.NewDecoder(strings.NewReader(out))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errorf(Pos{File: d.file, Line: d.offset + 1}, "the manifest is empty: it needs at least from:")
		}
		return nil, yamlError(err, d)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err, d)
		}
		return nil, Errorf(d.pos(&extra), "the rendered manifest has more than one YAML document")
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, Errorf(Pos{File: d.file, Line: d.offset + 1}, "the manifest is empty: it needs at least from:")
	}
	root := doc.Content[0]
	pairs, err := d.mapping(root, "the manifest", topKeys...)
	if err != nil {
		return nil, err
	}
	b := &Build{}
	var stages *pair
	var stageLevel []pair
	for _, p := range pairs {
		switch p.key {
		case "image":
			if b.Image, err = d.image(p.v); err != nil {
				return nil, err
			}
		case "target":
			if b.Target, err = d.nonEmpty(p.v, "target"); err != nil {
				return nil, err
			}
			d.targetPos = d.pos(p.v)
		case "stages":
			stages = &p
		case "platforms":
			if b.Platforms, err = d.platforms(p.v); err != nil {
				return nil, err
			}
		default:
			stageLevel = append(stageLevel, p)
		}
	}
	if stages == nil {
		s, err := d.stage("main", stageLevel, d.pos(root), "the manifest")
		if err != nil {
			return nil, err
		}
		b.Stages = []*Stage{s}
		return b, nil
	}
	if len(stageLevel) > 0 {
		p := stageLevel[0]
		return nil, Errorf(d.pos(p.k), "%s: with stages:, put %s inside a stage", p.key, p.key)
	}
	sps, err := d.mapping(stages.v, "stages")
	if err != nil {
		return nil, err
	}
	if len(sps) == 0 {
		return nil, Errorf(d.pos(stages.v), "stages must have at least one stage")
	}
	for _, sp := range sps {
		if !stageNameRE.MatchString(sp.key) {
			return nil, Errorf(d.pos(sp.k), "stage name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", sp.key)
		}
		what := fmt.Sprintf("stage %q", sp.key)
		if s, ok, err := d.dockerfileStage(sp, what); ok || err != nil {
			if err != nil {
				return nil, err
			}
			b.Stages = append(b.Stages, s)
			continue
		}
		ps, err := d.mapping(sp.v, what, stageKeys...)
		if err != nil {
			return nil, err
		}
		s, err := d.stage(sp.key, ps, d.pos(sp.k), what)
		if err != nil {
			return nil, err
		}
		b.Stages = append(b.Stages, s)
	}
	return b, nil
}

var stageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// target sets b.Target: opt (--target), else target:, else the last
// stage; and checks that it names a stage.
func (d *decoder) target(b *Build, opt string) error {
	names := make([]string, len(b.Stages))
	for i, s := range b.Stages {
		names[i] = s.Name
	}
	if opt != "" {
		if b.StageByName(opt) == nil {
			return fmt.Errorf("--target %s: no such stage in %s: the stages are %s", opt, d.file, strings.Join(names, ", "))
		}
		b.Target = opt
		return nil
	}
	if b.Target == "" {
		b.Target = b.Stages[len(b.Stages)-1].Name
		return nil
	}
	if b.StageByName(b.Target) == nil {
		return Errorf(d.targetPos, "target %q is not a stage: the stages are %s", b.Target, strings.Join(names, ", "))
	}
	return nil
}

// stage decodes the keys of a stage (or of the manifest, for "main").
func (d *decoder) stage(name string, ps []pair, pos Pos, what string) (*Stage, error) {
	s := &Stage{Name: name, Pos: pos}
	var (
		fromKey  *pair
		steps    *pair
		tests    *pair
		err      error
		fromSeen bool
	)
	for i := range ps {
		p := &ps[i]
		switch p.key {
		case "from", "language":
			if fromKey != nil {
				return nil, Errorf(d.pos(p.k), "%s: %s already has %s: (language: is an alias of from:)", p.key, what, fromKey.key)
			}
			fromKey = p
			if p.v.Kind == yaml.MappingNode {
				if s.From, s.Platform, err = d.fromPlatform(p.v, p.key); err != nil {
					return nil, err
				}
			} else if s.From, err = d.str(p.v, p.key); err != nil {
				return nil, err
			}
			if strings.TrimSpace(s.From) == "" {
				return nil, Errorf(d.pos(p.v), "%s: the base image must not be empty (use scratch for an empty base)", p.key)
			}
			fromSeen = true
		case "env":
			if s.Env, err = d.kvs(p.v, "env"); err != nil {
				return nil, err
			}
		case "workdir":
			if s.Workdir, err = d.nonEmpty(p.v, "workdir"); err != nil {
				return nil, err
			}
		case "user":
			if s.User, err = d.nonEmpty(p.v, "user"); err != nil {
				return nil, err
			}
		case "toolbox":
			if s.Toolbox, err = d.strList(p.v, "toolbox"); err != nil {
				return nil, err
			}
			for i, t := range s.Toolbox {
				if err := inContext(t); err != nil {
					return nil, &Error{Pos: d.pos(p.v.Content[i]), Msg: fmt.Sprintf("toolbox %q", t), Err: err}
				}
			}
		case "steps", "install":
			if steps != nil {
				return nil, Errorf(d.pos(p.k), "%s: %s already has %s: (install: is an alias of steps:)", p.key, what, steps.key)
			}
			steps = p
			if isNull(p.v) {
				continue
			}
			items, err := d.seq(p.v, p.key)
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				st, err := d.step(it)
				if err != nil {
					return nil, err
				}
				s.Steps = append(s.Steps, st)
			}
		case "tests", "script":
			if tests != nil {
				return nil, Errorf(d.pos(p.k), "%s: %s already has %s: (script: lines are tests named script-1, script-2, …)", p.key, what, tests.key)
			}
			tests = p
			if isNull(p.v) {
				continue
			}
			if s.Tests, err = d.tests(p.v, p.key); err != nil {
				return nil, err
			}
		case "services":
			if isNull(p.v) {
				continue
			}
			if s.Services, err = d.services(p.v); err != nil {
				return nil, err
			}
		}
	}
	// A stage that uses modules is checked once they are inlined: they
	// may bring services (expandModules).
	if !slices.ContainsFunc(s.Steps, func(st *Step) bool { return st.Kind == stepUse }) {
		if err := checkServices(s); err != nil {
			return nil, err
		}
	}
	if !fromSeen {
		return nil, Errorf(pos, "%s has no from: (the base image: scratch, an image reference, oci-layout:DIR, docker-archive:FILE, or another stage)", what)
	}
	return s, nil
}

var stepKeys = []string{"run", "copy", "template", "env", "workdir", "user"}

// limitKeys go beside run in a step, as does services.
var limitKeys = []string{"timeout", "memory", "pids", "services"}

// step decodes one step: a string (a shell command) or a map with one key.
func (d *decoder) step(n *yaml.Node) (*Step, error) {
	pos := d.pos(n)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		c, err := d.command(n, "a step")
		if err != nil {
			return nil, err
		}
		return &Step{Kind: StepRun, Name: stepName("run", c.Shell), Run: &c, Pos: pos}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, Errorf(pos, "a step must be a command or a map with one of %s, not %s", strings.Join(stepKeys, ", "), kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value == "use" || k.Value == "with" {
			return d.use(n, pos)
		}
	}
	all, err := d.mapping(n, "step", append(append([]string(nil), stepKeys...), limitKeys...)...)
	if err != nil {
		return nil, err
	}
	var ps, limits []pair
	for _, p := range all {
		if contains(limitKeys, p.key) {
			limits = append(limits, p)
		} else {
			ps = append(ps, p)
		}
	}
	switch len(ps) {
	case 0:
		return nil, Errorf(pos, "a step must have one of %s", strings.Join(stepKeys, ", "))
	case 1:
	default:
		return nil, Errorf(d.pos(ps[1].k), "a step does one thing: this one has %s and %s (make them two steps)", ps[0].key, ps[1].key)
	}
	p := ps[0]
	st := &Step{Kind: StepKind(p.key), Pos: pos}
	if len(limits) > 0 {
		if st.Kind != StepRun {
			return nil, Errorf(d.pos(limits[0].k), "%s applies to run steps only, not to %s", limits[0].key, st.Kind)
		}
		if i := slices.IndexFunc(limits, func(p pair) bool { return p.key == "services" }); i >= 0 {
			if st.Services, st.ServicesPos, err = d.serviceNames(limits[i].v); err != nil {
				return nil, err
			}
			limits = slices.Delete(limits, i, i+1)
		}
		if len(limits) > 0 {
			l, err := d.limits(limits)
			if err != nil {
				return nil, err
			}
			st.Limits = l
		}
	}
	switch st.Kind {
	case StepRun:
		c, err := d.command(p.v, "run")
		if err != nil {
			return nil, err
		}
		st.Run = &c
		if c.Exec != nil {
			st.Name = stepName("run", "["+strings.Join(c.Exec, ", ")+"]")
		} else {
			st.Name = stepName("run", c.Shell)
		}
	case StepCopy:
		c, err := d.copy(p.v)
		if err != nil {
			return nil, err
		}
		st.Copy = c
		from := ""
		if c.From != "" {
			from = "--from=" + c.From + " "
		}
		st.Name = stepName("copy", from+strings.Join(c.AllSources(), " ")+" -> "+c.Dst)
	case StepTemplate:
		src, dst, err := d.srcDst(p.v, "template", "src", "dst")
		if err != nil {
			return nil, err
		}
		if err := inContext(src.s); err != nil {
			return nil, &Error{Pos: pos, Msg: fmt.Sprintf("template source %q", src.s), Err: err}
		}
		st.Template = &Template{Src: src.s, Dst: dst.s}
		st.Name = stepName("template", src.s+" -> "+dst.s)
	case StepEnv:
		if st.Env, err = d.kvs(p.v, "env"); err != nil {
			return nil, err
		}
		if len(st.Env) == 0 {
			return nil, Errorf(d.pos(p.v), "env must set at least one variable")
		}
		parts := make([]string, len(st.Env))
		for i, kv := range st.Env {
			parts[i] = kv.Key + "=" + kv.Value
		}
		st.Name = stepName("env", strings.Join(parts, " "))
	case StepWorkdir:
		if st.Workdir, err = d.nonEmpty(p.v, "workdir"); err != nil {
			return nil, err
		}
		st.Name = stepName("workdir", st.Workdir)
	case StepUser:
		if st.User, err = d.nonEmpty(p.v, "user"); err != nil {
			return nil, err
		}
		st.Name = stepName("user", st.User)
	}
	return st, nil
}

type field struct {
	s    string
	pos  Pos
	list []string // copy's src: a list of two or more sources
}

// srcDst reads {src: A, dst: B} (plus extra keys, returned) or "A B".
func (d *decoder) srcDst(n *yaml.Node, what string, extra ...string) (src, dst field, err error) {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		f := strings.Fields(n.Value)
		if len(f) != 2 {
			return src, dst, Errorf(d.pos(n), "%s: want {src: SRC, dst: DST} or \"SRC DST\"", what)
		}
		return field{s: f[0], pos: d.pos(n)}, field{s: f[1], pos: d.pos(n)}, nil
	}
	ps, err := d.mapping(n, what, extra...)
	if err != nil {
		return src, dst, err
	}
	for _, p := range ps {
		switch p.key {
		case "src":
			src.pos = d.pos(p.v)
			if what == "copy" && p.v.Kind == yaml.SequenceNode {
				src.list, err = d.sources(p.v)
				if len(src.list) > 0 {
					src.s = src.list[0]
				}
				break
			}
			src.s, err = d.nonEmpty(p.v, what+" src")
		case "dst":
			dst.s, err = d.nonEmpty(p.v, what+" dst")
			dst.pos = d.pos(p.v)
		}
		if err != nil {
			return src, dst, err
		}
	}
	if src.s == "" {
		return src, dst, Errorf(d.pos(n), "%s needs src:", what)
	}
	if dst.s == "" {
		return src, dst, Errorf(d.pos(n), "%s needs dst:", what)
	}
	return src, dst, nil
}

// sources reads copy's src: [a, b]: a list of sources, none empty.
func (d *decoder) sources(n *yaml.Node) ([]string, error) {
	l, err := d.strList(n, "copy src")
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, Errorf(d.pos(n), "copy src: the list of sources is empty")
	}
	for i, s := range l {
		if s == "" {
			return nil, Errorf(d.pos(n.Content[i]), "copy src: a source is empty")
		}
	}
	return l, nil
}

var modeRE = regexp.MustCompile(`^(0o|0)?[0-7]{1,4}$`)

func (d *decoder) copy(n *yaml.Node) (*Copy, error) {
	src, dst, err := d.srcDst(n, "copy", "src", "dst", "from", "mode", "owner")
	if err != nil {
		return nil, err
	}
	c := &Copy{Src: src.s, Dst: dst.s}
	if len(src.list) > 1 {
		// As a Dockerfile's COPY a b /dst/: Dst is a directory.
		c.Src, c.Sources = "", src.list
	}
	if n.Kind == yaml.MappingNode {
		ps, _ := d.mapping(n, "copy")
		for _, p := range ps {
			switch p.key {
			case "from":
				c.From, err = d.nonEmpty(p.v, "copy from")
			case "mode":
				c.Mode, err = d.str(p.v, "copy mode")
				if err == nil {
					if !modeRE.MatchString(c.Mode) {
						err = Errorf(d.pos(p.v), "copy mode %q must be an octal mode like 0644", c.Mode)
					} else {
						m, _ := strconv.ParseUint(strings.TrimPrefix(c.Mode, "0o"), 8, 32)
						c.Mode = fmt.Sprintf("%04o", m)
					}
				}
			case "owner":
				c.Own, err = d.nonEmpty(p.v, "copy owner")
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if c.From == "" {
		for _, s := range c.AllSources() {
			if err := inContext(s); err != nil {
				return nil, &Error{Pos: d.pos(n), Msg: fmt.Sprintf("copy source %q", s), Err: err}
			}
		}
	}
	return c, nil
}

var testKeys = []string{"name", "run", "timeout", "services"}

func (d *decoder) tests(n *yaml.Node, key string) ([]*Test, error) {
	items, err := d.seq(n, key)
	if err != nil {
		return nil, err
	}
	var tests []*Test
	seen := map[string]bool{}
	for i, it := range items {
		t := &Test{Pos: d.pos(it)}
		if key == "script" {
			// travis style: each line is a test named script-N
			if t.Run, err = d.command(it, "a script line"); err != nil {
				return nil, err
			}
			t.Name = fmt.Sprintf("script-%d", i+1)
			tests = append(tests, t)
			continue
		}
		ps, err := d.mapping(it, "test", testKeys...)
		if err != nil {
			return nil, err
		}
		hasRun := false
		for _, p := range ps {
			switch p.key {
			case "name":
				if t.Name, err = d.nonEmpty(p.v, "test name"); err != nil {
					return nil, err
				}
				if seen[t.Name] {
					return nil, Errorf(d.pos(p.v), "duplicate test name %q", t.Name)
				}
				seen[t.Name] = true
			case "run":
				if t.Run, err = d.command(p.v, "test run"); err != nil {
					return nil, err
				}
				hasRun = true
			case "timeout":
				if t.Timeout, err = d.duration(p.v); err != nil {
					return nil, err
				}
			case "services":
				if t.Services, t.ServicesPos, err = d.serviceNames(p.v); err != nil {
					return nil, err
				}
			}
		}
		if t.Name == "" {
			return nil, Errorf(t.Pos, "a test needs a name: (it names the test in progress and reports)")
		}
		if !hasRun {
			return nil, Errorf(t.Pos, "test %q needs run:", t.Name)
		}
		tests = append(tests, t)
	}
	return tests, nil
}

// duration reads "30s", "2m", or a number of seconds.
func (d *decoder) duration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return 0, d.typeError(n, "timeout", `a duration ("30s")`)
	}
	if n.Tag == "!!int" {
		s, err := strconv.Atoi(n.Value)
		if err == nil && s >= 0 {
			return time.Duration(s) * time.Second, nil
		}
	}
	t, err := time.ParseDuration(n.Value)
	if err != nil || t < 0 {
		return 0, Errorf(d.pos(n), "timeout %q must be a duration like 30s or 2m", n.Value)
	}
	return t, nil
}

var imageKeys = []string{"cmd", "entrypoint", "env", "workdir", "user", "expose", "labels", "volumes", "stopsignal"}

func (d *decoder) image(n *yaml.Node) (ImageConfig, error) {
	var c ImageConfig
	ps, err := d.mapping(n, "image", imageKeys...)
	if err != nil {
		return c, err
	}
	for _, p := range ps {
		switch p.key {
		case "cmd":
			c.Cmd, err = d.argv(p.v, "cmd")
		case "entrypoint":
			c.Entrypoint, err = d.argv(p.v, "entrypoint")
		case "env":
			c.Env, err = d.kvs(p.v, "image env")
		case "workdir":
			c.Workdir, err = d.str(p.v, "image workdir")
		case "user":
			c.User, err = d.str(p.v, "image user")
		case "expose":
			c.Expose, err = d.expose(p.v)
		case "labels":
			c.Labels, err = d.kvs(p.v, "labels")
		case "volumes":
			c.Volumes, err = d.strList(p.v, "volumes")
		case "stopsignal":
			c.StopSignal, err = d.nonEmpty(p.v, "stopsignal")
		}
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

// argv reads cmd or entrypoint: a string is the shell form, a list the
// exec form; [] clears the base image's value, and null keeps it.
func (d *decoder) argv(n *yaml.Node, what string) ([]string, error) {
	switch {
	case isNull(n):
		return nil, nil
	case n.Kind == yaml.ScalarNode:
		return []string{"/bin/sh", "-c", n.Value}, nil
	case n.Kind == yaml.SequenceNode:
		l, err := d.strList(n, what)
		if l == nil && err == nil {
			l = []string{}
		}
		return l, err
	}
	return nil, d.typeError(n, what, "a string (shell form) or a list of strings (exec form)")
}

var portRE = regexp.MustCompile(`^([0-9]{1,5})(?:/(tcp|udp|sctp))?$`)

// expose reads ports: 8080 or "8080/udp"; the result always has the
// protocol ("8080/tcp"), as an image config's ExposedPorts keys do.
func (d *decoder) expose(n *yaml.Node) ([]string, error) {
	l, err := d.strList(n, "expose")
	if err != nil {
		return nil, err
	}
	for i, s := range l {
		m := portRE.FindStringSubmatch(strings.ToLower(s))
		port := 0
		if m != nil {
			port, _ = strconv.Atoi(m[1])
		}
		if m == nil || port < 1 || port > 65535 {
			return nil, Errorf(d.pos(n.Content[i]), "expose %q: want a port (8080) or a port and a protocol (8080/udp)", s)
		}
		proto := m[2]
		if proto == "" {
			proto = "tcp"
		}
		l[i] = fmt.Sprintf("%d/%s", port, proto)
	}
	return l, nil
}

// stepName returns "kind: what" on one line (lines joined with "; "), at
// most 60 characters.
func stepName(kind, what string) string {
	var lines []string
	for l := range strings.SplitSeq(what, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	s := kind + ": " + strings.Join(lines, "; ")
	const limit = 60
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit-1]) + "…"
	}
	return s
}

// limits reads a run step's timeout, memory and pids.
func (d *decoder) limits(ps []pair) (*Limits, error) {
	l := &Limits{}
	for _, p := range ps {
		pos := d.pos(p.v)
		if p.v.Kind != yaml.ScalarNode {
			return nil, Errorf(pos, "%s must be a value, not %s", p.key, kindName(p.v))
		}
		switch p.key {
		case "timeout":
			t, err := time.ParseDuration(p.v.Value)
			if err != nil || t <= 0 {
				return nil, Errorf(pos, "timeout %q: want a duration like 30s or 5m", p.v.Value)
			}
			l.Timeout = t
		case "memory":
			b, err := ParseBytes(p.v.Value)
			if err != nil {
				return nil, Errorf(pos, "%v", err)
			}
			l.Memory = b
		case "pids":
			n, err := strconv.ParseInt(p.v.Value, 10, 64)
			if err != nil || n <= 0 {
				return nil, Errorf(pos, "pids %q: want a whole number above 0", p.v.Value)
			}
			l.Pids = n
		}
	}
	return l, nil
}

// ParseBytes reads a size: 512m, 2g, 100k or a number of bytes.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	if s != "" {
		switch strings.ToLower(s[len(s)-1:]) {
		case "k":
			mult = 1 << 10
		case "m":
			mult = 1 << 20
		case "g":
			mult = 1 << 30
		}
	}
	num := s
	if mult != 1 {
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a size like 512m or 2g", s)
	}
	return n * mult, nil
}

// platforms decodes a manifest's platforms: list.
func (d *decoder) platforms(n *yaml.Node) ([]string, error) {
	list, err := d.strList(n, "platforms")
	if err != nil {
		return nil, err
	}
	var out []string
	for i, v := range list {
		p, err := platform.Parse(v)
		if err != nil {
			return nil, &Error{Pos: d.pos(n.Content[i]), Msg: "platforms", Err: err}
		}
		out = append(out, p.String())
	}
	return out, nil
}

// fromPlatform decodes from: {image: REF, platform: build|target|OS/ARCH}:
// the base, and the stage's own platform ("" for the build's target).
func (d *decoder) fromPlatform(n *yaml.Node, key string) (from, plat string, err error) {
	ps, err := d.mapping(n, key, "image", "platform")
	if err != nil {
		return "", "", err
	}
	for _, p := range ps {
		switch p.key {
		case "image":
			if from, err = d.nonEmpty(p.v, key+".image"); err != nil {
				return "", "", err
			}
		case "platform":
			v, err := d.nonEmpty(p.v, key+".platform")
			if err != nil {
				return "", "", err
			}
			switch v {
			case "build":
				plat = platform.Host().String()
			case "target":
			default:
				pl, err := platform.Parse(v)
				if err != nil {
					return "", "", &Error{Pos: d.pos(p.v), Msg: key + ".platform (build, target or os/arch)", Err: err}
				}
				plat = pl.String()
			}
		}
	}
	if from == "" {
		return "", "", Errorf(d.pos(n), "%s: needs image: (the base image)", key)
	}
	return from, plat, nil
}
