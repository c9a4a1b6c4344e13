// Package manifest provides facilities for reading kiln's build manifests
// into [Build], the intermediate representation that package dag compiles
// into a graph.
//
// A manifest is YAML in two documents: an optional first one declaring
// defaults for template variables (read as is), and a second one rendered
// as a Jinja2 template (package internal/jinja) with defaults < --values
// files < --set values, then decoded strictly. Every error names the file, line
// and column the user wrote.
//
// # The first document
//
// It is a first document only if the file has two: {vars: {NAME: VALUE},
// env_vars: [NAME]}. vars are the defaults of the template's values;
// env_vars names environment variables the template may read as env.NAME
// (with those given as Options.EnvVars; no other variable is visible).
// host.arch, host.os and host.cpus are always defined; host and env are
// reserved names.
//
// # The build document
//
// from (or language:, its travis-style alias), env (a map, in the order
// written), workdir, user, toolbox, steps (or install:), tests (or
// script:, whose Nth line becomes a test named script-N), image and, for
// several stages, stages (a map of name → {from, env, workdir, user,
// toolbox, steps, tests}, in the order written) and target. A manifest
// without stages: has one stage, "main". A step is a string (a shell
// command) or a map with one key: {run: "sh" | [exec, form]}, {copy: {src,
// dst, from, mode, owner}} or {copy: "SRC DST"}, {template: {src, dst}} or
// {template: "SRC DST"}, {env: {K: V}}, {workdir: DIR}, {user: USER}.
// {use: SOURCE, with: {PARAM: VALUE}} inlines a module (see Modules).
// Maps loop in key order.
//
// # Modules
//
// A module is a manifest fragment: a YAML file, or a directory holding
// module.yml (ModuleFile). Its optional first document declares {name,
// description, params: {NAME: {default, required, description, type:
// string|int|bool|list|map, enum}}} (the name defaults to the file's or
// the directory's); its second, a template rendered with its parameters
// (defaults < with:) and host only, holds steps and optionally tests, env
// (set for its run steps only) and toolbox. A use: source is a path
// relative to the file that uses it, inside the build context (inside a
// registry module, inside that module), or oci://REGISTRY/REPO:TAG or
// oci://REGISTRY/REPO@sha256:DIGEST, which Options.Modules fetches. The
// module's steps replace the use: step, named "MODULE: STEP"; its tests
// join the stage's, named "MODULE/TEST" (a repeat gets -2, -3, …); its
// toolbox joins the stage's. Its copy and template sources are in its own
// directory: a path module's become paths of the build context, a
// registry module's keep that directory in Copy.Dir and Template.Dir;
// templates render with the module's values (Template.Values). Every
// position in a module has the use: step's position as its Caller, so
// errors read "app.yml:12:5 → modules/user.yml:7:5: …". A missing
// required parameter, an unknown one, a value of the wrong type or not in
// the enum, a module using itself (directly or not) and a path leaving
// the context are errors at the caller's line naming the module.
//
// # Templates
//
// Templates render exactly as Python's Jinja2 3.1 renders them, with
// StrictUndefined, no autoescape, the trailing newline kept and
// trim_blocks and lstrip_blocks off (package internal/jinja; the
// differential suite testdata/jinja2 checks it against Jinja2 itself).
// Values keep the order they were written in (maps are *jinja.Dict). A
// name that is not defined ({{ nope }}, {{ a.nope }}, {% if nope %},
// {% for x in nope %}) is an error naming it and its position, unless it
// is filtered by default ({{ x | default("y") }}) or tested ({% if x is
// defined %}); so is an unknown filter or test. Output is not
// HTML-escaped. include, import and from-import only read files under the
// manifest's directory (a module's, for a module), named relative to it;
// symbolic links cannot leave it either. What kiln does not support
// (extends, block, autoescape, random, urlize, lipsum, …: see
// internal/jinja) is an error "Jinja2 CONSTRUCT is not supported by
// kiln" at its position.
//
// # Size
//
// The package is above the ~1,500 lines kiln's packages keep to (about
// 4,600), on purpose: it owns one noun, the build as the user wrote it.
// Its three inputs (YAML decoding with positions, templates, the
// Dockerfile frontend), and the modules and Dockerfile stages a YAML
// manifest pulls in, all produce the one IR (ir.go) and the one
// positioned *Error, and Load chooses between them. Subpackages would
// need the IR and Error in a package of their own under all three, for
// files that are each below 1,100 lines. What is not the IR's stays
// apart: the template engine (internal/jinja), modules as registry
// artifacts (manifest/module), kiln.lock (manifest/lock).
package manifest
