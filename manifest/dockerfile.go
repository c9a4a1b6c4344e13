package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/kiln-build/kiln/image/platform"
)

// This file is the Dockerfile frontend, and the only file of kiln that
// imports BuildKit: its parser and instructions packages read the file,
// its shell lexer expands variables, and what follows maps each
// instruction onto the IR the way BuildKit's dockerfile2llb does.

// LoadDockerfile reads the Dockerfile at path into the IR. Variables expand
// by Dockerfile word rules: ARGs before the first FROM (with
// opts.BuildArgs, the TARGETPLATFORM family and BUILDPLATFORM family)
// in FROM lines and --from flags, and in a stage its base image's env
// (opts.ResolveBase), its ARGs and its ENVs. Only the stages the target
// uses have their base resolved. Errors are *Error values naming the
// file and line, and the instruction or flag at fault; an instruction or
// flag kiln does not support is such an error, never skipped.
func LoadDockerfile(ctx context.Context, path string, opts Options) (*Build, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := readManifest(path, opts)
	if err != nil {
		return nil, fmt.Errorf("reading Dockerfile: %w", err)
	}
	b, err := parseDockerfile(ctx, path, data, opts)
	if err != nil {
		return nil, err
	}
	b.Context = opts.Context
	if b.Context == "" {
		b.Context = filepath.Dir(path)
	}
	if b.Context, err = filepath.Abs(b.Context); err != nil {
		return nil, fmt.Errorf("finding the build context: %w", err)
	}
	return b, nil
}

// dfCommand is one parsed instruction and its node.
type dfCommand struct {
	cmd  instructions.Command
	node *parser.Node
}

// dfStage is one FROM and the instructions under it.
type dfStage struct {
	stage *instructions.Stage
	node  *parser.Node
	cmds  []dfCommand
	name  string // the stage's name, or its index
	base  string // the expanded base: "scratch", an image, or a stage's name
	isImg bool   // base is an image (or scratch)
	// platform is FROM --platform's when it is not the target's
	platform string
}

// dfState is what a stage's instructions see as they are converted.
type dfState struct {
	vars    []string // KEY=VALUE for expansion (and runs): env, then ARGs and ENVs in order
	env     []string // the image's env: the base's, then ENVs
	args    []KV     // the ARG values in scope, set in runs only
	shell   []string
	cmdSet  bool
	onBuild []string
}

// converter turns one Dockerfile into a Build.
type converter struct {
	file      string
	opts      Options
	lex       *shell.Lex
	rawLex    *shell.Lex
	buildArgs map[string]string
	usedArgs  map[string]bool
	global    []string // the meta ARGs, KEY=VALUE
	stages    []*dfStage
	states    map[string]*dfState // by stage name, once converted
	images    map[string]*Stage   // synthetic stages for COPY --from=IMAGE, by ref
	b         *Build
}

var defaultShell = []string{"/bin/sh", "-c"}

// defaultPath is the PATH of a stage whose base has none, as BuildKit
// sets it (system.DefaultPathEnv).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// proxyArgs are the predefined ARGs: set in runs when given, without
// being declared.
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
	"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

func parseDockerfile(ctx context.Context, file string, data []byte, opts Options) (*Build, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		e := dfError(file, nil, "", err)
		if lines := strings.Split(string(data), "\n"); e.Pos.Line > 0 && e.Pos.Line <= len(lines) {
			if f := strings.Fields(lines[e.Pos.Line-1]); len(f) > 0 {
				e.Msg = strings.ToUpper(f[0])
			}
		}
		return nil, e
	}
	c := &converter{
		file: file, opts: opts,
		lex:       shell.NewLex(res.EscapeToken),
		rawLex:    shell.NewLex('\\'),
		buildArgs: map[string]string{},
		usedArgs:  map[string]bool{},
		states:    map[string]*dfState{},
		images:    map[string]*Stage{},
		b:         &Build{File: file, Platform: platformName(opts)},
	}
	c.rawLex.SkipProcessQuotes = true
	if syntax, _, _, ok := parser.DetectSyntax(data); ok {
		c.b.Warnings = append(c.b.Warnings, fmt.Sprintf("%s: the # syntax=%s directive is ignored: kiln builds with its own Dockerfile frontend", file, syntax))
	}
	for _, w := range res.Warnings {
		c.b.Warnings = append(c.b.Warnings, fmt.Sprintf("%s:%d: %s", file, warnLine(w.Location), w.Short))
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, a := range opts.BuildArgs {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: want KEY=VALUE", a)
		}
		if !ok {
			if v, ok = lookupEnv(getenv, k); !ok {
				continue
			}
		}
		c.buildArgs[k] = v
	}

	lint := linter.New(&linter.Config{Warn: func(string, string, string, string, []parser.Range) {}})
	var metaArgs []dfCommand
	for _, n := range res.AST.Children {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := instructions.ParseInstructionWithLinter(n, lint)
		if err != nil {
			return nil, dfError(file, n, strings.ToUpper(n.Value), err)
		}
		switch cmd := v.(type) {
		case *instructions.Stage:
			s := &dfStage{stage: cmd, node: n, name: cmd.Name}
			if s.name == "" {
				s.name = strconv.Itoa(len(c.stages))
			}
			c.stages = append(c.stages, s)
		case *instructions.ArgCommand:
			if len(c.stages) == 0 {
				metaArgs = append(metaArgs, dfCommand{cmd, n})
				continue
			}
			for _, kv := range cmd.Args {
				c.usedArgs[kv.Key] = true // used, even in a stage the target does not need
			}
			c.stages[len(c.stages)-1].cmds = append(c.stages[len(c.stages)-1].cmds, dfCommand{cmd, n})
		case instructions.Command:
			if len(c.stages) == 0 {
				return nil, dfErrorf(file, n, "%s before the first FROM: a Dockerfile starts with FROM (only ARG may come before it)", strings.ToUpper(n.Value))
			}
			c.stages[len(c.stages)-1].cmds = append(c.stages[len(c.stages)-1].cmds, dfCommand{cmd, n})
		default:
			return nil, dfErrorf(file, n, "%s: unexpected instruction", strings.ToUpper(n.Value))
		}
	}
	if len(c.stages) == 0 {
		return nil, Errorf(Pos{File: file}, "the Dockerfile has no FROM instruction")
	}
	if err := c.metaArgs(metaArgs); err != nil {
		return nil, err
	}
	if err := c.resolveBases(); err != nil {
		return nil, err
	}
	target, err := c.target()
	if err != nil {
		return nil, err
	}
	if err := c.checkCopyFrom(); err != nil {
		return nil, err
	}
	// As BuildKit, only the stages the target needs are converted: the
	// others' instructions are parsed (above) but never expanded nor
	// checked (dockerfile2llb/convert.go:770-775, dispatchStages).
	needed := c.needed(target)
	for i, s := range c.stages {
		if !needed[s.name] {
			continue
		}
		st, err := c.convertStage(ctx, i, s)
		if err != nil {
			return nil, err
		}
		c.b.Stages = append(c.b.Stages, st)
	}
	var imgs []string
	for ref := range c.images {
		imgs = append(imgs, ref)
	}
	slices.Sort(imgs)
	for _, ref := range imgs {
		c.b.Stages = append(c.b.Stages, c.images[ref])
	}
	c.b.Target = target
	var unused []string
	for k := range c.buildArgs {
		if !c.usedArgs[k] && !slices.Contains(proxyArgs, k) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		c.b.Warnings = append(c.b.Warnings, fmt.Sprintf("%s: build args not used by any ARG: %s", file, strings.Join(unused, ", ")))
	}
	return c.b, nil
}

func lookupEnv(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	if v == "" {
		return os.LookupEnv(k)
	}
	return v, true
}

func warnLine(r *parser.Range) int {
	if r == nil {
		return 0
	}
	return r.Start.Line
}

// dfError wraps an error of the parser or of an instruction as an *Error
// at the instruction's line (or the error's own location).
func dfError(file string, n *parser.Node, what string, err error) *Error {
	line := 0
	if n != nil {
		line = n.StartLine
	}
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
		err = le.Unwrap()
	}
	msg := what
	if msg == "" {
		msg = "parsing Dockerfile"
	}
	return &Error{Pos: Pos{File: file, Line: line}, Msg: msg, Err: errors.New(strings.TrimPrefix(err.Error(), "dockerfile parse error: "))}
}

func dfErrorf(file string, n *parser.Node, format string, args ...any) *Error {
	return Errorf(Pos{File: file, Line: n.StartLine}, format, args...)
}

func (c *converter) pos(n *parser.Node) Pos { return Pos{File: c.file, Line: n.StartLine} }

// metaArgs evaluates the ARGs before the first FROM, over the platform
// ARGs.
func (c *converter) metaArgs(cmds []dfCommand) error {
	build, target := platform.Host(), c.targetPlatform()
	for _, kv := range [][2]string{
		{"BUILDPLATFORM", build.String()}, {"BUILDOS", build.OS}, {"BUILDARCH", build.Arch}, {"BUILDVARIANT", build.Variant},
		{"TARGETPLATFORM", target.String()}, {"TARGETOS", target.OS}, {"TARGETARCH", target.Arch}, {"TARGETVARIANT", target.Variant},
	} {
		c.global = SetEnv(c.global, kv[0]+"="+kv[1])
	}
	for _, m := range cmds {
		a := m.cmd.(*instructions.ArgCommand)
		for _, kv := range a.Args {
			c.usedArgs[kv.Key] = true
			if v, ok := c.buildArgs[kv.Key]; ok {
				c.global = SetEnv(c.global, kv.Key+"="+v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, err := c.expand(*kv.Value, c.global)
			if err != nil {
				return dfError(c.file, m.node, "ARG", err)
			}
			c.global = SetEnv(c.global, kv.Key+"="+v)
		}
	}
	return nil
}

func (c *converter) expand(word string, env []string) (string, error) {
	s, _, err := c.lex.ProcessWord(word, shell.EnvsFromSlice(env))
	return s, err
}

// stageIndex finds an earlier stage by name (case-insensitive) or index.
func (c *converter) stageIndex(ref string, before int, byIndex bool) (int, bool) {
	if byIndex {
		if i, err := strconv.Atoi(ref); err == nil && i >= 0 && i < before {
			return i, true
		}
	}
	for i := 0; i < before; i++ {
		if c.stages[i].stage.Name != "" && strings.EqualFold(c.stages[i].stage.Name, ref) {
			return i, true
		}
	}
	return -1, false
}

// resolveBases expands every FROM and checks its platform.
func (c *converter) resolveBases() error {
	seen := map[string]int{}
	for i, s := range c.stages {
		if j, ok := seen[s.name]; ok {
			return dfErrorf(c.file, s.node, "FROM: duplicate stage name %q (first at line %d)", s.name, c.stages[j].node.StartLine)
		}
		seen[s.name] = i
		base, err := c.expand(s.stage.BaseName, c.global)
		if err != nil {
			return dfError(c.file, s.node, "FROM", err)
		}
		if base == "" {
			return dfErrorf(c.file, s.node, "FROM: the base name (%s) is empty after expansion", s.stage.BaseName)
		}
		if p := s.stage.Platform; p != "" {
			p, err := c.expand(p, c.global)
			if err != nil {
				return dfError(c.file, s.node, "FROM --platform", err)
			}
			pl, err := platform.Parse(p)
			if err != nil {
				return dfErrorf(c.file, s.node, "FROM --platform=%s: %v", p, err)
			}
			if pl != c.targetPlatform() {
				s.platform = pl.String()
			}
		}
		if j, ok := c.stageIndex(base, i, false); ok {
			s.base = c.stages[j].name
			continue
		}
		s.base, s.isImg = base, true
		if strings.EqualFold(base, "scratch") {
			s.base = "scratch"
		}
	}
	return nil
}

// targetPlatform is the platform the build is for: opts.Platform, or
// the host's.
func (c *converter) targetPlatform() platform.Platform {
	if c.opts.Platform.IsZero() {
		return platform.Host()
	}
	return c.opts.Platform
}

// target returns the name of the target stage.
func (c *converter) target() (string, error) {
	if c.opts.Target == "" {
		return c.stages[len(c.stages)-1].name, nil
	}
	if i, ok := c.stageIndex(c.opts.Target, len(c.stages), false); ok {
		return c.stages[i].name, nil
	}
	var names []string
	for _, s := range c.stages {
		if s.stage.Name != "" {
			names = append(names, s.stage.Name)
		}
	}
	return "", Errorf(Pos{File: c.file}, "--target %q: no stage has that name (stages: %s)", c.opts.Target, strings.Join(names, ", "))
}

// checkCopyFrom refuses a variable in the --from of any stage's COPY, as
// BuildKit does before it chooses the stages to build
// (dockerfile2llb/convert.go:941-952, toCommand): --from, expanded with no
// variables, must stay as written.
func (c *converter) checkCopyFrom() error {
	for _, s := range c.stages {
		for _, dc := range s.cmds {
			if cmd, ok := dc.cmd.(*instructions.CopyCommand); ok {
				if err := c.literalFrom(cmd.From); err != nil {
					return dfErrorf(c.file, dc.node, "COPY %v", err)
				}
			}
		}
	}
	return nil
}

// literalFrom refuses a COPY --from value that has variables (or quotes).
func (c *converter) literalFrom(from string) error {
	if v, err := c.expand(from, nil); err != nil || v != from {
		return fmt.Errorf("--from=%s: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround", from)
	}
	return nil
}

// needed returns the stages the target uses: through FROM, COPY --from
// and RUN --mount=from=, read before expansion of the stage (RUN --mount's
// from= values expand with the meta ARGs only).
func (c *converter) needed(target string) map[string]bool {
	deps := map[string][]string{}
	for i, s := range c.stages {
		if !s.isImg {
			deps[s.name] = append(deps[s.name], s.base)
		}
		var froms []string
		for _, dc := range s.cmds {
			switch cmd := dc.cmd.(type) {
			case *instructions.CopyCommand:
				froms = append(froms, cmd.From)
			case *instructions.RunCommand:
				for _, f := range dc.node.Flags {
					spec, ok := strings.CutPrefix(f, "--mount=")
					if !ok {
						continue
					}
					for _, field := range strings.Split(spec, ",") {
						if v, ok := strings.CutPrefix(strings.TrimSpace(field), "from="); ok {
							if v, err := c.expand(v, c.global); err == nil {
								froms = append(froms, v)
							}
						}
					}
				}
			}
		}
		for _, f := range froms {
			if f == "" {
				continue
			}
			if j, ok := c.stageIndex(f, i, true); ok {
				deps[s.name] = append(deps[s.name], c.stages[j].name)
			}
		}
	}
	need := map[string]bool{}
	var use func(string)
	use = func(n string) {
		if need[n] {
			return
		}
		need[n] = true
		for _, d := range deps[n] {
			use(d)
		}
	}
	use(target)
	return need
}

// convertStage converts the stage at index i, which the target needs.
func (c *converter) convertStage(ctx context.Context, i int, s *dfStage) (*Stage, error) {
	out := &Stage{Name: s.name, From: s.base, Platform: s.platform, Pos: c.pos(s.node)}
	st := &dfState{shell: defaultShell}
	if !s.isImg {
		p := c.states[s.base]
		st.env = slices.Clone(p.env)
		st.shell = p.shell
		st.onBuild = slices.Clone(p.onBuild)
	} else if s.base != "scratch" && c.opts.ResolveBase != nil {
		cfg, err := c.opts.ResolveBase(ctx, s.base)
		if err != nil {
			return nil, dfErrorf(c.file, s.node, "FROM %s: resolving the base image: %v", s.base, err)
		}
		if cfg != nil {
			for _, kv := range cfg.Env {
				st.env = SetEnv(st.env, kv.Key+"="+kv.Value)
			}
			if len(cfg.Shell) > 0 {
				st.shell = cfg.Shell
			}
			st.onBuild = slices.Clone(cfg.OnBuild)
		}
	}
	if _, ok := envValue(st.env, "PATH"); !ok && s.isImg && (s.base == "scratch" || c.opts.ResolveBase != nil) {
		// As BuildKit does, every stage has a PATH: a base without one
		// gets the default.
		st.env = SetEnv(st.env, "PATH="+defaultPath)
		out.Steps = append(out.Steps, &Step{Kind: StepEnv, Name: "ENV PATH=" + defaultPath + " (the default: the base has no PATH)",
			Env: []KV{{"PATH", defaultPath}}, Pos: out.Pos})
	}
	if s.base == "scratch" {
		// BuildKit's empty image has the working directory /
		// (frontend/dockerfile/dockerfile2llb/image.go, emptyImage).
		out.Steps = append(out.Steps, &Step{Kind: StepWorkdir, Name: "WORKDIR / (the default of scratch)", Workdir: "/", Pos: out.Pos})
	}
	st.vars = slices.Clone(st.env)
	c.states[s.name] = st

	// The base's ONBUILD triggers run first, then are cleared.
	if triggers := st.onBuild; len(triggers) > 0 {
		st.onBuild = nil
		for _, t := range triggers {
			if err := c.trigger(ctx, i, out, st, s, t); err != nil {
				return nil, err
			}
		}
		out.Steps = append(out.Steps, &Step{Kind: StepConfig, Name: "ONBUILD (triggers done)", Config: &ImageConfig{OnBuild: []string{}}, Pos: out.Pos})
	}
	for _, dc := range s.cmds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.command(i, out, st, dc.cmd, dc.node, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// trigger runs one ONBUILD trigger of the base, at the FROM line.
func (c *converter) trigger(ctx context.Context, i int, out *Stage, st *dfState, s *dfStage, t string) error {
	res, err := parser.Parse(strings.NewReader(t + "\n"))
	if err != nil {
		return dfErrorf(c.file, s.node, "FROM: the base image's ONBUILD trigger %q: %v", t, err)
	}
	lint := linter.New(&linter.Config{Warn: func(string, string, string, string, []parser.Range) {}})
	for _, n := range res.AST.Children {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := instructions.ParseInstructionWithLinter(n, lint)
		if err != nil {
			return dfErrorf(c.file, s.node, "FROM: the base image's ONBUILD trigger %q: %v", t, err)
		}
		cmd, ok := v.(instructions.Command)
		if !ok {
			return dfErrorf(c.file, s.node, "FROM: the base image's ONBUILD trigger %q is not allowed", t)
		}
		n.StartLine, n.EndLine = s.node.StartLine, s.node.EndLine
		if err := c.command(i, out, st, cmd, n, "ONBUILD "); err != nil {
			return err
		}
	}
	return nil
}

// instructionName is the instruction as written, on one line.
func instructionName(prefix string, n *parser.Node) string {
	s := strings.Join(strings.Fields(n.Original), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return prefix + s
}

// command converts one instruction of stage i into steps of out.
func (c *converter) command(i int, out *Stage, st *dfState, cmd instructions.Command, n *parser.Node, prefix string) error {
	instr := strings.ToUpper(n.Value)
	pos := c.pos(n)
	name := instructionName(prefix, n)
	add := func(s *Step) {
		s.Name, s.Pos = name, pos
		out.Steps = append(out.Steps, s)
	}
	fail := func(err error) error { return dfError(c.file, n, instr, err) }
	failf := func(format string, args ...any) error {
		return Errorf(pos, "%s: %s", instr, fmt.Sprintf(format, args...))
	}
	if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
		if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := e.Expand(func(w string) (string, error) { return c.expand(w, st.vars) }); err != nil {
				return fail(err)
			}
		}
		if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
			err := e.ExpandRaw(func(w string) (string, error) {
				s, _, err := c.rawLex.ProcessWord(w, shell.EnvsFromSlice(st.vars))
				return s, err
			})
			if err != nil {
				return fail(err)
			}
		}
	}
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		var kvs []KV
		for _, kv := range cmd.Env {
			kvs = append(kvs, KV{kv.Key, kv.Value})
			st.env = SetEnv(st.env, kv.Key+"="+kv.Value)
			st.vars = SetEnv(st.vars, kv.Key+"="+kv.Value)
			st.args = slices.DeleteFunc(st.args, func(a KV) bool { return a.Key == kv.Key })
		}
		add(&Step{Kind: StepEnv, Env: kvs})
	case *instructions.ArgCommand:
		for _, kv := range cmd.Args {
			c.usedArgs[kv.Key] = true
			var val *string
			if v, ok := c.buildArgs[kv.Key]; ok {
				val = &v
			} else if kv.Value != nil {
				v, err := c.expand(*kv.Value, st.vars)
				if err != nil {
					return fail(err)
				}
				val = &v
			} else if v, ok := envValue(c.global, kv.Key); ok {
				val = &v
			}
			if val == nil {
				continue
			}
			// An ARG after an ENV of the same name wins in expansion and
			// in runs, though not in the image's config, as in BuildKit
			// (dockerfile2llb/convert.go, dispatchArg: d.state.AddEnv).
			// An ENV after the ARG wins again.
			st.vars = SetEnv(st.vars, kv.Key+"="+*val)
			st.args = slices.DeleteFunc(st.args, func(a KV) bool { return a.Key == kv.Key })
			st.args = append(st.args, KV{kv.Key, *val})
		}
	case *instructions.RunCommand:
		return c.run(i, st, cmd, add, failf)
	case *instructions.CopyCommand:
		if cmd.Parents {
			return failf("the --parents flag is not supported")
		}
		if len(cmd.ExcludePatterns) > 0 {
			return failf("the --exclude flag is not supported")
		}
		cp, err := c.copySpec(&cmd.SourcesAndDest, cmd.Chown, cmd.Chmod, failf)
		if err != nil {
			return err
		}
		if cmd.From != "" {
			// Taken as written (checkCopyFrom checked the Dockerfile's,
			// not a base's ONBUILD triggers).
			if err := c.literalFrom(cmd.From); err != nil {
				return failf("%v", err)
			}
			if cp.From, err = c.fromRef(i, cmd.From, pos); err != nil {
				return failf("%v", err)
			}
		}
		if cp.From == "" {
			toContext(cp)
		}
		add(&Step{Kind: StepCopy, Copy: cp})
	case *instructions.AddCommand:
		if len(cmd.ExcludePatterns) > 0 {
			return failf("the --exclude flag is not supported")
		}
		if cmd.KeepGitDir != nil {
			return failf("the --keep-git-dir flag is not supported (ADD of git repositories is not supported yet)")
		}
		// URLs are downloaded at build time; the rest come from the context.
		sd := cmd.SourcesAndDest
		sd.SourcePaths = nil
		var urls []URLSource
		for _, src := range cmd.SourcePaths {
			if !isURL(src) {
				sd.SourcePaths = append(sd.SourcePaths, src)
				continue
			}
			if strings.HasSuffix(strings.TrimSuffix(src, "/"), ".git") || strings.HasPrefix(src, "git@") {
				return failf("%s: ADD of git repositories is not supported yet", src)
			}
			if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
				return failf("%s: only http and https URLs can be added", src)
			}
			urls = append(urls, URLSource{URL: src})
		}
		if cmd.Checksum != "" {
			if len(urls) != 1 || len(sd.SourcePaths) > 0 || len(sd.SourceContents) > 0 {
				return failf("--checksum needs exactly one source, a URL")
			}
			if !strings.HasPrefix(cmd.Checksum, "sha256:") || len(cmd.Checksum) != len("sha256:")+64 {
				return failf("--checksum=%s: want sha256: and 64 hex digits", cmd.Checksum)
			}
			urls[0].Checksum = cmd.Checksum
		}
		if n := len(sd.SourcePaths) + len(sd.SourceContents) + len(urls); n > 1 && !strings.HasSuffix(sd.DestPath, "/") {
			return failf("with more than one source, the destination %q must be a directory and end with a /", sd.DestPath)
		}
		cp, err := c.copySpec(&sd, cmd.Chown, cmd.Chmod, failf)
		if err != nil {
			return err
		}
		cp.URLs = urls
		cp.Extract = cmd.Unpack == nil || *cmd.Unpack
		toContext(cp)
		add(&Step{Kind: StepCopy, Copy: cp})
	case *instructions.WorkdirCommand:
		add(&Step{Kind: StepWorkdir, Workdir: cmd.Path, MakeWorkdir: true})
	case *instructions.UserCommand:
		add(&Step{Kind: StepUser, User: cmd.User})
	case *instructions.LabelCommand:
		var kvs []KV
		for _, kv := range cmd.Labels {
			kvs = append(kvs, KV{kv.Key, kv.Value})
		}
		add(&Step{Kind: StepConfig, Config: &ImageConfig{Labels: kvs}})
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range cmd.Ports {
			words, err := c.lex.ProcessWords(p, shell.EnvsFromSlice(st.vars))
			if err != nil {
				return fail(err)
			}
			for _, w := range words {
				ps, err := exposedPorts(w)
				if err != nil {
					return failf("%v", err)
				}
				ports = append(ports, ps...)
			}
		}
		add(&Step{Kind: StepConfig, Config: &ImageConfig{Expose: ports}})
	case *instructions.VolumeCommand:
		for _, v := range cmd.Volumes {
			if v == "" {
				return failf("a volume cannot be an empty string")
			}
		}
		add(&Step{Kind: StepConfig, Config: &ImageConfig{Volumes: slices.Clone(cmd.Volumes)}})
	case *instructions.StopSignalCommand:
		add(&Step{Kind: StepConfig, Config: &ImageConfig{StopSignal: cmd.Signal}})
	case *instructions.CmdCommand:
		if len(cmd.Files) > 0 {
			return failf("heredocs are not supported in CMD")
		}
		st.cmdSet = true
		add(&Step{Kind: StepConfig, Config: &ImageConfig{Cmd: withShell(st.shell, cmd.ShellDependantCmdLine)}})
	case *instructions.EntrypointCommand:
		if len(cmd.Files) > 0 {
			return failf("heredocs are not supported in ENTRYPOINT")
		}
		ic := &ImageConfig{Entrypoint: withShell(st.shell, cmd.ShellDependantCmdLine)}
		if !st.cmdSet {
			ic.Cmd = []string{} // as Docker: a new entrypoint drops the base's cmd
		}
		add(&Step{Kind: StepConfig, Config: ic})
	case *instructions.ShellCommand:
		st.shell = slices.Clone(cmd.Shell)
		add(&Step{Kind: StepConfig, Config: &ImageConfig{Shell: slices.Clone(cmd.Shell)}})
	case *instructions.HealthCheckCommand:
		h := cmd.Health
		hc := &Healthcheck{Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
		add(&Step{Kind: StepConfig, Config: &ImageConfig{Healthcheck: hc}})
	case *instructions.OnbuildCommand:
		st.onBuild = append(st.onBuild, cmd.Expression)
		add(&Step{Kind: StepConfig, Config: &ImageConfig{OnBuild: []string{cmd.Expression}}})
	case *instructions.MaintainerCommand:
		// The image's author, as BuildKit sets it
		// (dockerfile2llb/convert.go:1570-1572).
		add(&Step{Kind: StepConfig, Config: &ImageConfig{Author: cmd.Maintainer}})
	default:
		return failf("the instruction is not supported")
	}
	return nil
}

func envValue(env []string, k string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v, true
		}
	}
	return "", false
}

// withShell returns the argv of a CMD or ENTRYPOINT: its exec form, or
// its shell form run by the shell. A nil command (ENTRYPOINT []) clears.
func withShell(sh []string, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		if c.CmdLine == nil {
			return []string{}
		}
		return slices.Clone(c.CmdLine)
	}
	return append(slices.Clone(sh), c.CmdLine...)
}

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "git@", "git://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// fromRef resolves a --from value: an earlier stage's name or index, or
// an image, which becomes a stage of its own without steps.
// The stage made for an image is at pos, the first instruction naming it.
func (c *converter) fromRef(i int, ref string, pos Pos) (string, error) {
	if strings.EqualFold(ref, c.stages[i].name) || strings.EqualFold(ref, c.stages[i].stage.Name) {
		return "", fmt.Errorf("--from=%s: a stage cannot use itself", ref)
	}
	if j, ok := c.stageIndex(ref, i, true); ok {
		if _, done := c.states[c.stages[j].name]; !done {
			// Only a base's ONBUILD trigger can name a stage that needed()
			// did not see.
			return "", fmt.Errorf("--from=%s: stage %q is not built for this target (kiln does not add the stages that a base's ONBUILD trigger uses)", ref, c.stages[j].name)
		}
		return c.stages[j].name, nil
	}
	if j, ok := c.stageIndex(ref, len(c.stages), true); ok {
		return "", fmt.Errorf("--from=%s: stage %q is defined later (a stage can only use stages before it)", ref, c.stages[j].name)
	}
	if _, err := strconv.Atoi(ref); err == nil {
		return "", fmt.Errorf("--from=%s: there is no stage %s before this one", ref, ref)
	}
	if s, ok := c.images[ref]; ok {
		return s.Name, nil
	}
	s := &Stage{Name: "image:" + strings.ReplaceAll(ref, "/", "_"), From: ref, Pos: pos}
	if strings.EqualFold(ref, "scratch") {
		s.From = "scratch"
	}
	c.images[ref] = s
	return s.Name, nil
}

// copySpec is the common part of COPY and ADD.
func (c *converter) copySpec(sd *instructions.SourcesAndDest, chown, chmod string, failf func(string, ...any) error) (*Copy, error) {
	cp := &Copy{Dst: sd.DestPath, Own: chown}
	if chmod != "" {
		v, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || v > 0o7777 {
			return nil, failf("--chmod=%s: only octal modes (0755) are supported", chmod)
		}
		cp.Mode = fmt.Sprintf("%04o", v)
		cp.ModeDirs = true // fsutil copy/copy_linux.go:31-44: every file and directory copied
	}
	cp.AllowEmptyWildcard = true // dockerfile2llb/convert_copy.go:289
	if chown != "" {
		u, g, _ := strings.Cut(chown, ":")
		if u == "" || strings.Contains(g, ":") {
			return nil, failf("--chown=%s: want USER[:GROUP] (names or numbers)", chown)
		}
	}
	srcs := slices.Clone(sd.SourcePaths)
	for _, f := range sd.SourceContents {
		cp.Inline = append(cp.Inline, InlineFile{Name: f.Path, Data: f.Data})
	}
	if len(srcs)+len(cp.Inline) > 1 && !strings.HasSuffix(cp.Dst, "/") {
		return nil, failf("with more than one source, the destination %q must be a directory and end with a /", cp.Dst)
	}
	if cp.Dst == "" {
		return nil, failf("the destination is empty")
	}
	for _, s := range srcs {
		if s == "" {
			return nil, failf("a source is empty")
		}
	}
	switch len(srcs) {
	case 0:
	case 1:
		cp.Src = srcs[0]
	default:
		cp.Sources = srcs
	}
	return cp, nil
}

// contextPath makes a COPY source relative to the context: in a
// Dockerfile, /a means the context's a.
func contextPath(src string) string {
	p := path.Clean("/" + src)
	if p == "/" {
		return "."
	}
	p = p[1:]
	if strings.HasSuffix(src, "/") {
		p += "/"
	}
	return p
}

// toContext makes a copy's sources relative to the context.
func toContext(cp *Copy) {
	if cp.Src != "" {
		cp.Src = contextPath(cp.Src)
	}
	for i, s := range cp.Sources {
		cp.Sources[i] = contextPath(s)
	}
}

// run converts a RUN.
func (c *converter) run(i int, st *dfState, cmd *instructions.RunCommand, add func(*Step), failf func(string, ...any) error) error {
	for _, f := range cmd.FlagsUsed {
		switch f {
		case "mount", "network":
		case "security":
			if instructions.GetSecurity(cmd) != "sandbox" {
				return failf("--security=%s is not supported", instructions.GetSecurity(cmd))
			}
		default:
			return failf("the --%s flag is not supported", f)
		}
	}
	s := &Step{Kind: StepRun}
	args := cmd.CmdLine
	if len(cmd.Files) > 0 {
		if len(args) != 1 || !cmd.PrependShell {
			return failf("heredocs need the shell form")
		}
		if h := parser.MustParseHeredoc(args[0]); h != nil {
			data := cmd.Files[0].Data
			if cmd.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				// A script with its interpreter: run it as a file.
				mode := uint32(0o755)
				target := path.Join("/dev/pipes", cmd.Files[0].Name)
				s.Mounts = append(s.Mounts, Mount{Type: MountFile, Target: target, Data: data, Mode: &mode})
				args = []string{target}
			} else {
				args = []string{data}
			}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range cmd.Files {
				b.WriteByte('\n')
				b.WriteString(f.Data)
				b.WriteString(f.Name)
			}
			args = []string{b.String()}
		}
	}
	switch {
	case !cmd.PrependShell:
		if len(args) == 0 {
			return failf("the command is empty")
		}
		s.Run = &Command{Exec: slices.Clone(args)}
	case slices.Equal(st.shell, defaultShell):
		s.Run = &Command{Shell: strings.Join(args, " ")}
	default:
		s.Run = &Command{Exec: append(slices.Clone(st.shell), args...)}
	}
	switch nw := instructions.GetNetwork(cmd); nw {
	case instructions.NetworkDefault:
	case instructions.NetworkNone, instructions.NetworkHost:
		s.Network = nw
	default:
		return failf("--network=%s is not supported", nw)
	}
	for _, m := range instructions.GetMounts(cmd) {
		mt, err := c.mount(i, m, failf)
		if err != nil {
			return err
		}
		if mt.Target == "" {
			return failf("--mount=type=%s: a target is required", m.Type)
		}
		mt.Target = path.Clean(mt.Target)
		if !path.IsAbs(mt.Target) {
			return failf("--mount target %q must be an absolute path", mt.Target)
		}
		s.Mounts = append(s.Mounts, mt)
	}
	s.RunEnv = slices.Clone(st.args)
	for _, k := range proxyArgs {
		if v, ok := c.buildArgs[k]; ok && !slices.ContainsFunc(s.RunEnv, func(a KV) bool { return a.Key == k }) {
			s.RunEnv = append(s.RunEnv, KV{k, v})
		}
	}
	add(s)
	return nil
}

// mount converts one --mount.
func (c *converter) mount(i int, m *instructions.Mount, failf func(string, ...any) error) (Mount, error) {
	out := Mount{Target: m.Target}
	u64 := func(p *uint64) *int {
		if p == nil {
			return nil
		}
		v := int(*p)
		return &v
	}
	if m.Mode != nil {
		v := uint32(*m.Mode)
		out.Mode = &v
	}
	out.UID, out.GID = u64(m.UID), u64(m.GID)
	switch m.Type {
	case instructions.MountTypeCache:
		if m.From != "" || m.Source != "" {
			return out, failf("--mount=type=cache: from= and source= are not supported")
		}
		out.Type, out.ID, out.Sharing = MountCache, m.CacheID, string(m.CacheSharing)
		if m.ReadOnly {
			return out, failf("--mount=type=cache: readonly is not supported")
		}
		if out.ID == "" {
			out.ID = path.Clean(m.Target)
		}
		if out.Sharing == "" {
			out.Sharing = "shared"
		}
	case instructions.MountTypeSecret:
		out.Type, out.ID, out.Required = MountSecret, m.CacheID, m.Required
		if out.ID == "" {
			out.ID = path.Base(m.Target)
		}
		if m.Source != "" {
			out.ID = m.Source
		}
		if m.Env != nil {
			out.Env = *m.Env
		}
		if out.Target == "" && out.Env == "" {
			out.Target = "/run/secrets/" + out.ID
		}
		if out.Target == "" {
			return out, failf("--mount=type=secret with only env= is not supported: give a target")
		}
	case instructions.MountTypeBind:
		out.Type, out.Source, out.ReadWrite = MountBind, m.Source, !m.ReadOnly
		if m.From != "" {
			from, err := c.expand(m.From, c.global)
			if err != nil {
				return out, failf("--mount from=%s: %v", m.From, err)
			}
			if out.From, err = c.fromRef(i, from, Pos{File: c.file, Line: c.stages[i].node.StartLine}); err != nil {
				return out, failf("--mount: %v", err)
			}
		} else {
			out.Source = contextPath(out.Source)
		}
		if out.Source == "" {
			out.Source = "/"
		}
	case instructions.MountTypeTmpfs:
		out.Type, out.Size = MountTmpfs, m.SizeLimit
	default:
		return out, failf("--mount=type=%s is not supported", m.Type)
	}
	return out, nil
}
