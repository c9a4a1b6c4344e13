package manifest

import (
	"fmt"
	"time"
)

// Build is the intermediate representation of a build: what a YAML
// manifest (or, later, a Dockerfile) compiles to, and what package dag
// turns into a graph. It knows nothing of containers.
type Build struct {
	File    string         // the manifest's path, as given
	Context string         // the build context directory, absolute
	Stages  []*Stage       // in the order written; names are unique
	Target  string         // the stage that becomes the image
	Image   ImageConfig    // the image's config
	Values  map[string]any // the template values, for template steps
}

// Stage is a base and the steps on top of it.
type Stage struct {
	Name    string // "main" for a manifest without stages:
	From    string // "scratch", an image reference, oci-layout:DIR[:TAG], docker-archive:FILE, or a stage's Name
	Env     []KV   // in the order written
	Workdir string
	User    string
	Toolbox []string // directories, relative to the context
	Steps   []*Step
	Tests   []*Test
	Pos     Pos
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
	Pos      Pos
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
	Dst  string // absolute, or relative to the workdir
	Mode string // optional octal mode, "0644"
	Own  string // optional owner, "uid:gid"
}

// Template renders a file of the context with the build's values.
type Template struct {
	Src string // relative to the context
	Dst string
}

// Test is a check run on a snapshot of its stage's last step: it gates
// the build and never enters the image.
type Test struct {
	Name    string
	Run     Command
	Timeout time.Duration // 0: no limit
	Pos     Pos
}

// ImageConfig is the config of the built image. A nil slice leaves the
// base image's value; an empty, non-nil one clears it.
type ImageConfig struct {
	Cmd        []string
	Entrypoint []string
	Env        []KV
	Workdir    string
	User       string
	Expose     []string
	Labels     []KV
	Volumes    []string
	StopSignal string
}

// Pos is where a user wrote something: the manifest (or an included
// template) and a 1-based line and column.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
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
