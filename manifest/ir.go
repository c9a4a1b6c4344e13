package manifest

import (
	"fmt"
	"time"
)

// Build is the intermediate representation of a build: what a YAML
// manifest (or, later, a Dockerfile) compiles to, and what package dag
// turns into a graph. It knows nothing of containers.
type Build struct {
	File    string   // the manifest's path, as given
	Context string   // the build context directory, absolute
	Stages  []*Stage // in the order written; names are unique
	// Platform is the platform the build is for ("linux/arm64"); "" is
	// the host's. Platforms are those a manifest's platforms: lists, for
	// a build given no --platform: the CLI loads the manifest once for
	// each.
	Platform  string         `json:",omitempty"`
	Platforms []string       `json:",omitempty"`
	Target    string         // the stage that becomes the image
	Image     ImageConfig    // the image's config
	Values    map[string]any // the template values, for template steps
	// Warnings are notes for the user about what was accepted but not
	// acted on (a Dockerfile's # syntax= directive); the CLI prints them
	// on stderr.
	Warnings []string `json:",omitempty"`
	// Modules are the modules the build's use: steps inlined, in the
	// order met (a module used by a module after its user).
	Modules []UsedModule `json:",omitempty"`
}

// Stage is a base and the steps on top of it.
type Stage struct {
	Name string // "main" for a manifest without stages:
	From string // "scratch", an image reference, oci-layout:DIR[:TAG], docker-archive:FILE, or a stage's Name
	// Platform, when set, is the stage's own platform ("linux/amd64"):
	// a build stage on the build platform (FROM --platform=$BUILDPLATFORM,
	// from: {image: …, platform: build}). "" is the build's (Build.Platform),
	// or, for a stage FROM another stage, that stage's.
	Platform string `json:",omitempty"`
	Env      []KV   // in the order written
	Workdir  string
	User     string
	Toolbox  []string // directories, relative to the context
	Steps    []*Step
	Tests    []*Test
	// Services are the containers the stage's tests (and run steps that
	// name them) need beside them, by name, in the order written.
	Services []*Service `json:",omitempty"`
	Pos      Pos
}

// DefaultServiceTimeout is how long a service has to get ready when it
// does not say.
const DefaultServiceTimeout = 60 * time.Second

// Service is a container started beside the tests that need it, in
// their pod: they share one network namespace (loopback), and each
// service's name resolves to 127.0.0.1 there. It never enters the image.
type Service struct {
	Name string
	// Image is an image reference; Stage, instead, is a stage of the
	// same build. One of them is set.
	Image string `json:",omitempty"`
	Stage string `json:",omitempty"`
	// Command replaces the image's entrypoint and cmd; nil runs them.
	Command *Command `json:",omitempty"`
	Env     []KV     `json:",omitempty"` // over the image's
	User    string   `json:",omitempty"`
	Workdir string   `json:",omitempty"`
	Ready   Ready
	// Timeout bounds the wait for Ready; 0 is DefaultServiceTimeout.
	Timeout time.Duration `json:",omitempty"`
	// Share starts the service once for every test of the stage that
	// needs it, in one pod with the stage's other shared services,
	// instead of once per test.
	Share bool `json:",omitempty"`
	Pos   Pos
}

// Ready is how kiln knows a service is ready: a TCP port listening in
// the pod, or a command run in the service's container that exits 0
// (retried). Neither set: ready once started.
type Ready struct {
	Port int      `json:",omitempty"`
	Run  *Command `json:",omitempty"`
}

// ServiceByName returns the stage's service called name, or nil.
func (s *Stage) ServiceByName(name string) *Service {
	for _, sv := range s.Services {
		if sv.Name == name {
			return sv
		}
	}
	return nil
}

// KV is one environment variable or label.
type KV struct {
	Key, Value string
}

// StepKind says what a step does.
type StepKind string

const (
	StepRun      StepKind = "run"
	StepCopy     StepKind = "copy"
	StepTemplate StepKind = "template"
	StepEnv      StepKind = "env"
	StepWorkdir  StepKind = "workdir"
	StepUser     StepKind = "user"
	// StepConfig changes the image config (Step.Config, a delta applied
	// in order); it makes no layer. A Dockerfile's CMD, ENTRYPOINT,
	// LABEL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL and ONBUILD.
	StepConfig StepKind = "config"
)

// Step is one cached layer (run, copy, template) or one change of the
// config that the following steps see (env, workdir, user).
type Step struct {
	Kind StepKind
	// Name is the step as the user wrote it, on one line: "run: echo hi",
	// "copy: ./src -> /app". It names the step in progress, errors and
	// graphs.
	Name     string
	Run      *Command  // StepRun
	Copy     *Copy     // StepCopy
	Template *Template // StepTemplate
	Env      []KV      // StepEnv
	Workdir  string    // StepWorkdir
	User     string    // StepUser
	// MakeWorkdir (StepWorkdir) also creates the directory, owned by the
	// config's user, as a Dockerfile's WORKDIR does: the step then makes
	// a layer.
	MakeWorkdir bool         `json:",omitempty"`
	Config      *ImageConfig `json:",omitempty"` // StepConfig: the change, see ImageConfig
	// RunEnv (StepRun) is set in the command's environment only, over the
	// config's env: a Dockerfile's ARG values. It never reaches the image.
	RunEnv []KV    `json:",omitempty"`
	Mounts []Mount `json:",omitempty"` // StepRun: what is mounted for the command only
	// Network (StepRun) overrides the build's network: "none" or "host";
	// "" is the build's.
	Network string `json:",omitempty"`
	// Services (StepRun) are services of the stage the command runs
	// beside, in their pod; ServicesPos is where each is written.
	Services    []string `json:",omitempty"`
	ServicesPos []Pos    `json:"-"`
	Pos         Pos
	// Limits, for a run step, bound its container; zero fields take the
	// build's defaults.
	Limits *Limits `json:",omitempty"`
}

// Limits bound a run step's container.
type Limits struct {
	Timeout time.Duration `json:",omitempty"` // killed after this long
	Memory  int64         `json:",omitempty"` // bytes
	Pids    int64         `json:",omitempty"` // processes at once
}

// MountType says what a run step's Mount is.
type MountType string

const (
	// MountCache is a directory kept between builds under kiln's root,
	// shared by every step that names the same ID.
	MountCache MountType = "cache"
	// MountSecret is a file holding the secret ID, read-only; it never
	// reaches a layer, the image, the history or a cache key (which holds
	// only the ID).
	MountSecret MountType = "secret"
	// MountBind is Source from another stage (From) or the build context,
	// read-only unless ReadWrite (writes are then thrown away).
	MountBind MountType = "bind"
	// MountTmpfs is an empty tmpfs.
	MountTmpfs MountType = "tmpfs"
	// MountFile is a file holding Data (a Dockerfile heredoc script).
	MountFile MountType = "file"
)

// Mount is something mounted for one run step only. Its target never
// leaves a stub in the layer.
type Mount struct {
	Type   MountType
	Target string // absolute
	// ID names a cache (default: Target) or a secret.
	ID string
	// Sharing (cache) is shared (the default: used at once by every
	// step), locked or private (one step at a time).
	Sharing string
	From    string // bind: a stage's name; "" for the build context
	Source  string // bind: a path in From or the context (default: its root)
	// ReadWrite (bind) lets the command write, to a throwaway copy.
	ReadWrite bool
	// Required (secret) makes a missing secret an error; otherwise the
	// mount is left out, as BuildKit does.
	Required bool
	// Env (secret) also puts the secret in this environment variable.
	Env  string
	Mode *uint32 // cache, secret, file: the mode of the file or directory
	UID  *int    // cache, secret: the owner
	GID  *int
	Size int64  // tmpfs: the size limit in bytes; 0 is the default
	Data string // file: the content
}

// Command is a command in shell form (Shell) or exec form (Exec).
type Command struct {
	Shell string   // run through /bin/sh -c
	Exec  []string // run as is
}

// Args returns the command's argv.
func (c Command) Args() []string {
	if c.Exec != nil {
		return c.Exec
	}
	return []string{"/bin/sh", "-c", c.Shell}
}

// Copy copies files from the build context, or from another stage.
type Copy struct {
	From string // a stage's name; "" for the build context
	Src  string // relative to the context (or a path in the stage)
	// Sources, when not empty, are the sources in place of Src (a
	// Dockerfile's COPY a b c /dst/): Dst is then a directory.
	Sources []string `json:",omitempty"`
	// Inline files (a Dockerfile's heredocs) are copied as if they were
	// sources named Name, after Sources.
	Inline []InlineFile `json:",omitempty"`
	Dst    string       // absolute, or relative to the workdir
	// Dir, when set, is the absolute directory Src and Sources are
	// relative to in place of the build context: a registry module's
	// files (see UsedModule).
	Dir  string `json:",omitempty"`
	Mode string // optional octal mode, "0644", of the files copied
	// ModeDirs (a Dockerfile's --chmod) also gives Mode to the directories
	// copied, and its permission bits to those made for Dst, as BuildKit
	// does.
	ModeDirs bool `json:",omitempty"`
	// AllowEmptyWildcard (a Dockerfile's COPY and ADD) makes a source with
	// wildcards that matches nothing copy nothing, as BuildKit does; a
	// missing source without wildcards still fails.
	AllowEmptyWildcard bool `json:",omitempty"`
	// Own is an optional owner, "uid:gid", or a user and group name
	// looked up in the destination's /etc/passwd and /etc/group.
	Own string
	// Extract (a Dockerfile's ADD) unpacks a source that is a local tar
	// archive (plain, gzip or bzip2) into Dst instead of copying it.
	Extract bool `json:",omitempty"`
	// URLs (a Dockerfile's ADD https://…) are downloaded at build time
	// and copied after the other sources, as files of mode 0600.
	URLs []URLSource `json:",omitempty"`
}

// URLSource is a file to download.
type URLSource struct {
	URL string
	// Checksum, when set ("sha256:…"), is what the download must hash to.
	Checksum string `json:",omitempty"`
}

// InlineFile is a file given in the build file itself.
type InlineFile struct {
	Name string
	Data string
}

// AllSources returns Sources, or Src alone.
func (c *Copy) AllSources() []string {
	if len(c.Sources) > 0 {
		return c.Sources
	}
	if c.Src == "" && (len(c.Inline) > 0 || len(c.URLs) > 0) {
		return nil
	}
	return []string{c.Src}
}

// Template renders a file of the context with the build's values.
type Template struct {
	Src string // relative to the context
	Dst string
	// Dir, when set, is the absolute directory Src is relative to in
	// place of the build context (a registry module's).
	Dir string `json:",omitempty"`
	// Values, when not nil, are what the file is rendered with in place
	// of the build's: a module's parameters.
	Values map[string]any `json:",omitempty"`
}

// Test is a check run on a snapshot of its stage's last step: it gates
// the build and never enters the image.
type Test struct {
	Name    string
	Run     Command
	Timeout time.Duration // 0: no limit
	// Services are the stage's services the test runs beside, by name;
	// ServicesPos is where each is written.
	Services    []string `json:",omitempty"`
	ServicesPos []Pos    `json:"-"`
	Pos         Pos
}

// ImageConfig is the config of the built image. A nil slice leaves the
// base image's value; an empty, non-nil one clears it.
//
// As a StepConfig change, Cmd, Entrypoint and Shell replace the value when
// not nil; Env, Labels, Expose and Volumes add to it; OnBuild adds to it,
// and an empty, non-nil OnBuild clears it; a non-empty string and a non-nil
// Healthcheck replace.
type ImageConfig struct {
	Cmd         []string
	Entrypoint  []string
	Env         []KV
	Workdir     string
	User        string
	Expose      []string
	Labels      []KV
	Volumes     []string
	StopSignal  string
	Shell       []string     `json:",omitempty"`
	Healthcheck *Healthcheck `json:",omitempty"`
	OnBuild     []string     `json:",omitempty"` // Dockerfile instructions run by builds FROM the image
	// Author (a Dockerfile's MAINTAINER) is the image config's author,
	// replaced when not empty.
	Author string `json:",omitempty"`
}

// Healthcheck is how a container checks it is healthy. Test is ["NONE"],
// ["CMD", argv...] or ["CMD-SHELL", command]. A zero duration or Retries
// inherits the default.
type Healthcheck struct {
	Test          []string
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration // between checks during StartPeriod
	Retries       int
}

// Pos is where a user wrote something: the manifest (or an included
// template) and a 1-based line and column.
type Pos struct {
	File string
	Line int
	Col  int
	// Caller, for what a module wrote, is the position of the use: step
	// that inlined it (itself with a Caller when that module was used by
	// another module).
	Caller *Pos `json:",omitempty"`
}

// String returns "file:line:col"; for a position in a module, the
// callers' positions come first: "app.yml:12:5 → modules/user.yml:7:5".
func (p Pos) String() string {
	own := p.own()
	if p.Caller == nil {
		return own
	}
	return p.Caller.String() + " → " + own
}

func (p Pos) own() string {
	switch {
	case p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is a problem with what the user wrote, at a position: it prints
// as "app.yml:12:5: unknown key "foo" in a step: use run, copy, …".
type Error struct {
	Pos Pos
	Msg string
	Err error // the cause, if any
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if p := e.Pos.String(); p != "" {
		return p + ": " + s
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error at pos.
func Errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// StageByName returns the stage called name, or nil.
func (b *Build) StageByName(name string) *Stage {
	for _, s := range b.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}
