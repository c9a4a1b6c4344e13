package manifest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/internal/jinja"
	"github.com/kiln-build/kiln/internal/regfile"
)

// Options are the inputs of a manifest besides the manifest itself:
// values for its template, and what to build.
type Options struct {
	// Values are YAML files (--values FILE), each a map of template values;
	// later files win over earlier ones, and all over the first document's
	// vars.
	Values []string
	// Set are --set key=value assignments, applied in order after Values.
	// A dotted key sets a nested value (a.b=c gives {a: {b: c}}). A value
	// is a string, except true and false (booleans) and decimal integers
	// without a leading zero (ints): 3.10 and 0644 stay strings. A value
	// starting with [ or { is YAML flow syntax: pkgs=[curl, jq] is a list,
	// opts={a: 1} a map; {curl, jq}, a flow map whose keys have no values,
	// is read as the list [curl, jq], as Helm users write it.
	Set []string
	// EnvVars names the environment variables templates may read as
	// env.NAME, besides those the manifest's first document lists under
	// env_vars:. No other variable of the environment is visible.
	EnvVars []string
	// Getenv reads the environment. The default is os.Getenv.
	Getenv func(string) string
	// Context is the build context directory. The default is the
	// manifest's directory.
	Context string
	// Target is the stage that becomes the image. The default is the
	// manifest's target:, else its last stage.
	Target string
	// Platform is the platform the build is for: what templates see as
	// target.os, target.arch and target.variant, and a Dockerfile's
	// TARGETPLATFORM, TARGETOS, TARGETARCH and TARGETVARIANT. The zero
	// Platform is the host's.
	Platform platform.Platform
	// Host is what templates see as host.arch, host.os and host.cpus. The
	// default is this machine's (host.os is always "linux").
	Host *Host
	// Frontend chooses how path is read: "dockerfile", or "yaml" (kiln's
	// manifests). The default is a Dockerfile when IsDockerfile(path) or
	// its first instruction is a Dockerfile instruction
	// (StartsLikeDockerfile), and YAML otherwise.
	Frontend string
	// BuildArgs are a Dockerfile's --build-arg KEY=VALUE values (a KEY
	// alone takes its value from Getenv, as docker build does).
	BuildArgs []string
	// Modules fetches the modules use: steps name by a registry source
	// (oci://…). The default refuses them; paths need no resolver.
	Modules ModuleResolver
	// ResolveBase returns the config of a Dockerfile's base image: its
	// Env is what variables expand with, and its OnBuild triggers run at
	// the start of the stage. The default takes every base to have no env
	// and no triggers.
	ResolveBase func(ctx context.Context, ref string) (*ImageConfig, error)
	// Data, when not nil, is the manifest's text, read in place of the
	// file at path, which then only names it and places it (its
	// directory is where its includes and modules are found): kiln
	// build -f - reads stdin, named StdinName in the context.
	Data []byte
}

// StdinName is the base name of a manifest read from stdin (Data).
const StdinName = "<stdin>"

// Load reads the manifest at path: it renders the template, decodes the
// result, validates it and returns the IR. Errors are *Error values naming
// the manifest's file, line and column, or wrap the failure to read a
// file.
func Load(ctx context.Context, path string, opts Options) (*Build, error) {
	fe, err := Frontend(path, opts)
	if err != nil {
		return nil, err
	}
	if fe == "dockerfile" {
		return LoadDockerfile(ctx, path, opts)
	}
	b, _, err := load(ctx, path, opts)
	return b, err
}

// Frontend returns how the manifest at path is read, "dockerfile" or
// "yaml": opts.Frontend when given, else a Dockerfile when IsDockerfile
// says so by its name or by its first instruction.
func Frontend(path string, opts Options) (string, error) {
	switch opts.Frontend {
	case "dockerfile", "yaml":
		return opts.Frontend, nil
	case "":
	default:
		return "", fmt.Errorf("unknown frontend %q: use dockerfile or yaml", opts.Frontend)
	}
	if IsDockerfile(path) {
		return "dockerfile", nil
	}
	data, err := readManifest(path, opts)
	if err != nil {
		return "", fmt.Errorf("reading manifest: %w", err)
	}
	if StartsLikeDockerfile(data) {
		return "dockerfile", nil
	}
	return "yaml", nil
}

// Render returns the rendered second document of the manifest at path
// (what `kiln render` prints), with the same errors as Load: the rendered
// text must also decode and validate.
func Render(ctx context.Context, path string, opts Options) ([]byte, error) {
	_, out, err := load(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// manifestNames are the names Find tries, in order.
var manifestNames = []string{"kiln.yml", "kiln.yaml", "app.yml", "app.yaml", "Dockerfile", "Containerfile"}

// IsDockerfile reports whether path names a Dockerfile: its base name
// is Dockerfile or Containerfile, starts with Dockerfile. or
// Containerfile. (Dockerfile.dev), or ends in .Dockerfile, .dockerfile or
// .Containerfile; a .yml or .yaml name never is.
func IsDockerfile(path string) bool {
	base := filepath.Base(path)
	if ext := filepath.Ext(base); ext == ".yml" || ext == ".yaml" {
		return false
	}
	for _, n := range []string{"Dockerfile", "Containerfile"} {
		if base == n || strings.HasPrefix(base, n+".") || strings.HasSuffix(base, "."+n) {
			return true
		}
	}
	return strings.HasSuffix(base, ".dockerfile")
}

// dockerfileInstructions are the instructions a Dockerfile may start
// with, upper-cased.
var dockerfileInstructions = map[string]bool{
	"FROM": true, "ARG": true, "RUN": true, "CMD": true, "LABEL": true, "MAINTAINER": true, "EXPOSE": true,
	"ENV": true, "ADD": true, "COPY": true, "ENTRYPOINT": true, "VOLUME": true, "USER": true, "WORKDIR": true,
	"ONBUILD": true, "STOPSIGNAL": true, "HEALTHCHECK": true, "SHELL": true,
}

// StartsLikeDockerfile reports whether the first line of data that is
// neither blank nor a comment starts with a Dockerfile instruction (in
// any case) followed by a space: "FROM alpine" does, "from: alpine" (YAML)
// does not.
func StartsLikeDockerfile(data []byte) bool {
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		word, rest, ok := strings.Cut(strings.ReplaceAll(l, "\t", " "), " ")
		return ok && dockerfileInstructions[strings.ToUpper(word)] && strings.TrimSpace(rest) != ""
	}
	return false
}

// Find returns the manifest to use in dir: kiln.yml, kiln.yaml, app.yml,
// app.yaml, then Dockerfile and Containerfile.
func Find(dir string) (string, error) {
	for _, n := range manifestNames {
		p := filepath.Join(dir, n)
		fi, err := os.Stat(p)
		if err == nil && !fi.IsDir() {
			return p, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("looking for a manifest: %w", err)
		}
	}
	return "", fmt.Errorf("no manifest in %s: tried %s", dir, strings.Join(manifestNames, ", "))
}

func load(ctx context.Context, path string, opts Options) (*Build, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	data, err := readManifest(path, opts)
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest: %w", err)
	}
	docs, err := split(path, string(data))
	if err != nil {
		return nil, "", err
	}
	first, err := readFirst(path, docs.first)
	if err != nil {
		return nil, "", err
	}
	values, err := buildValues(first, opts)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Dir(path)
	r := newRenderer(regfile.FS(dir), dir, values)
	out, lines, err := r.render(path, docs.offset, docs.second, true)
	if err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	d := &decoder{
		file:     path,
		offset:   docs.offset,
		lineMap:  lines,
		rendered: strings.Split(out, "\n"),
		template: strings.Split(docs.second, "\n"),
	}
	b, err := d.decode(out)
	if err != nil {
		return nil, "", err
	}
	b.File = path
	b.Values = values
	b.Context = opts.Context
	if b.Context == "" {
		b.Context = dir
	}
	if b.Context, err = filepath.Abs(b.Context); err != nil {
		return nil, "", fmt.Errorf("finding the build context: %w", err)
	}
	if err := d.expandDockerfiles(ctx, b, dir, opts); err != nil {
		return nil, "", err
	}
	mods, err := d.expandModules(ctx, b, opts)
	if err != nil {
		return nil, "", err
	}
	if err := d.target(b, opts.Target); err != nil {
		return nil, "", err
	}
	b.Platform = platformName(opts)
	b.Warnings = append(b.Warnings, unreadWarnings(b, first, opts, r.env.Names(), len(d.dockerfiles) > 0)...)
	return b, out + mods, nil
}

// readManifest reads the manifest at path inside the build context when
// it is in it, else inside its own directory: a link leading out of that
// directory, or a file that is not a regular file, is refused before it
// is read (see package regfile).
func readManifest(path string, opts Options) ([]byte, error) {
	if opts.Data != nil {
		return opts.Data, nil
	}
	dir, name := filepath.Split(path)
	if opts.Context != "" {
		ctx, err := filepath.Abs(opts.Context)
		if err != nil {
			return nil, err
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		if rel, err := filepath.Rel(ctx, abs); err == nil && within(ctx, abs) && rel != "." {
			dir, name = ctx, rel
		}
	}
	if dir == "" {
		dir = "."
	}
	return regfile.ReadFile(dir, name)
}

// documents is a manifest split into its two YAML documents.
type documents struct {
	first  string // the first document, with the lines before it blanked; "" if none
	second string // the template
	offset int    // the number of lines of the file before second
}

var separatorRE = regexp.MustCompile(`^---(\s.*)?$`)

// split splits a manifest at its "---" lines. The second document is a
// template, which yaml.v3 cannot read before rendering, so this is done by
// lines: a leading "---" (after blank and comment lines only) starts the
// first document, and one more "---" line separates the two.
func split(file, data string) (documents, error) {
	lines := strings.Split(data, "\n")
	var seps []int
	for i, l := range lines {
		if separatorRE.MatchString(strings.TrimRight(l, "\r")) {
			seps = append(seps, i)
		}
	}
	if len(seps) > 0 {
		leading := true
		for _, l := range lines[:seps[0]] {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				leading = false
			}
		}
		if leading {
			lines[seps[0]] = ""
			seps = seps[1:]
		}
	}
	switch len(seps) {
	case 0:
		return documents{second: strings.Join(lines, "\n")}, nil
	case 1:
		s := seps[0]
		return documents{
			first:  strings.Join(lines[:s], "\n"),
			second: strings.Join(lines[s+1:], "\n"),
			offset: s + 1,
		}, nil
	}
	return documents{}, Errorf(Pos{File: file, Line: seps[1] + 1, Col: 1},
		"a manifest has at most two YAML documents (template values, then the build)")
}

// first is the manifest's first document.
type first struct {
	vars    *jinja.Dict
	envVars []string
}

// firstNode parses a first document; it returns nil for an empty one.
func firstNode(file, doc string) (*yaml.Node, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		return nil, yamlError(err, &decoder{file: file, rendered: strings.Split(doc, "\n")})
	}
	if len(n.Content) == 0 {
		return nil, nil
	}
	return n.Content[0], nil
}

func readFirst(file, doc string) (first, error) {
	var f first
	n, err := firstNode(file, doc)
	if n == nil || err != nil {
		return f, err
	}
	d := &decoder{file: file}
	pairs, err := d.mapping(n, "the first document", "vars", "env_vars")
	if err != nil {
		return f, err
	}
	for _, p := range pairs {
		switch p.key {
		case "vars":
			if p.v.Kind != yaml.MappingNode {
				if isNull(p.v) {
					continue
				}
				return f, d.typeError(p.v, "vars", "a map")
			}
			v, err := nodeValue(p.v, file, false)
			if err != nil {
				return f, err
			}
			f.vars = v.(*jinja.Dict)
		case "env_vars":
			names, err := d.strList(p.v, "env_vars")
			if err != nil {
				return f, err
			}
			for i, name := range names {
				if !envNameRE.MatchString(name) {
					return f, Errorf(d.pos(p.v.Content[i]), "env_vars: %q is not an environment variable name", name)
				}
			}
			f.envVars = names
		}
	}
	return f, nil
}

// buildValues merges the template values: the first document's vars <
// opts.Values files < opts.Set; then host and env.
func buildValues(f first, opts Options) (map[string]any, error) {
	values := map[string]any{}
	if f.vars != nil {
		mergeValues(values, f.vars)
	}
	for _, file := range opts.Values {
		v, err := readValues(file)
		if err != nil {
			return nil, err
		}
		mergeValues(values, v)
	}
	for _, s := range opts.Set {
		v, err := parseSet(s)
		if err != nil {
			return nil, err
		}
		mergeValues(values, v)
	}
	for _, k := range []string{"host", "env", "target"} {
		if _, ok := values[k]; ok {
			return nil, fmt.Errorf("template value %q: the name is reserved (kiln sets host.arch, host.os, host.cpus, target.os, target.arch, target.variant, and env.NAME for each --env-var NAME)", k)
		}
	}
	h := defaultHost()
	if opts.Host != nil {
		h = *opts.Host
	}
	values["host"] = hostValue(h)
	t := opts.Platform
	if t.IsZero() {
		t, _ = platform.Parse(h.OS + "/" + h.Arch)
	}
	values["target"] = targetValue(t)
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	env := jinja.NewDict()
	names := append(append([]string(nil), f.envVars...), opts.EnvVars...)
	sort.Strings(names)
	for _, name := range names {
		if !envNameRE.MatchString(name) {
			return nil, fmt.Errorf("--env-var %q: not an environment variable name", name)
		}
		env.Set(name, getenv(name))
	}
	values["env"] = env
	return values, nil
}

// platformName is the Build.Platform of a build with opts.
func platformName(opts Options) string {
	if opts.Platform.IsZero() {
		return ""
	}
	return opts.Platform.String()
}
