package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/executor/progress"
	"github.com/kiln-build/kiln/manifest"
)

// checkInputs checks, before anything runs, the inputs of every node the
// build needs that the build context holds: each copy source (or what
// its wildcards match) exists, and each template: file exists and
// renders. It returns every problem at once, each at its step's
// file:line:col and said the way the step would say it, or nil.
func checkInputs(b *manifest.Build, g *dag.Graph, bctx *buildctx.Context) error {
	var problems []error
	for _, n := range g.Needed() {
		s := n.Step
		if s == nil {
			continue
		}
		var errs []error
		switch {
		case s.Copy != nil && s.Copy.From == "" && s.Copy.Dir == "":
			for _, src := range s.Copy.AllSources() {
				_, err := bctx.Resolve(src)
				if err != nil && !(s.Copy.AllowEmptyWildcard && errors.Is(err, buildctx.ErrNoMatch)) {
					errs = append(errs, err)
				}
			}
		case s.Template != nil:
			if _, err := manifest.RenderTemplate(b, s.Template); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					err = fmt.Errorf("template source %q: no such file in the build context", s.Template.Src)
				}
				errs = append(errs, err)
			}
		}
		for _, err := range errs {
			var me *manifest.Error
			if errors.As(err, &me) {
				problems = append(problems, err) // a template's own error, at its own position
				continue
			}
			problems = append(problems, manifest.Errorf(s.Pos, "%s: %v", s.Name, err))
		}
	}
	switch len(problems) {
	case 0:
		return nil
	case 1:
		return problems[0]
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = "  " + p.Error()
	}
	return &inputsError{problems: problems, msg: fmt.Sprintf("%s with the build's inputs; nothing ran:\n%s",
		progress.Count(len(problems), "problem"), strings.Join(lines, "\n"))}
}

// inputsError is every problem checkInputs found.
type inputsError struct {
	problems []error
	msg      string
}

func (e *inputsError) Error() string   { return e.msg }
func (e *inputsError) Unwrap() []error { return e.problems }
