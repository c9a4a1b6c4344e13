package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/toolbox"
)

// This file gives run steps and tests their /.kiln (package toolbox):
// kiln's binary, the template values and the stage's toolbox: entries.
//
// Toolbox content is never part of a cache key: changing a tool keeps
// the steps cached (use copy: for a tool whose output must be tracked).
// The template values are part of the key of the run steps and tests
// that can read them, and only those can: /.kiln/values.json is mounted
// in the containers of the commands that mention "kiln" (as
// /.kiln/bin/kiln render, or a /.kiln/toolbox script, do). A changed
// value so runs again what may use it, and nothing else; a script that
// calls kiln render without its step naming kiln fails, saying so,
// instead of reusing a stale layer.

// toolboxState is a build's /.kiln, made on first use.
type toolboxState struct {
	once   sync.Once
	err    error
	values string  // the values file on the host
	digest v1.Hash // of the values, when there are any
	any    bool    // there are values

	mu     sync.Mutex
	stages map[*manifest.Stage][]toolbox.Tool
}

// active reports whether containers of the build get a /.kiln.
func (r *run) toolboxActive() bool {
	if r.opts.KilnBinary != "" {
		return true
	}
	for _, s := range r.b.Stages {
		if len(s.Toolbox) > 0 {
			return true
		}
	}
	return false
}

// toolboxInit writes the values file once.
func (r *run) toolboxInit() error {
	tb := &r.tb
	tb.once.Do(func() {
		if !r.toolboxActive() {
			return
		}
		b, err := json.Marshal(r.b.Values)
		if err != nil {
			tb.err = fmt.Errorf("encoding the template values: %w", err)
			return
		}
		if tb.any = len(r.b.Values) > 0; tb.any {
			tb.digest, _, _ = v1.SHA256(bytes.NewReader(b))
		}
		if r.opts.DryRun {
			return
		}
		tb.values, tb.err = toolbox.WriteValues(r.opts.Tmp, tmpPrefix("values")+"*.json", r.b.Values)
	})
	return tb.err
}

// usesValues reports whether a command gets the template values.
func usesValues(args []string) bool {
	for _, a := range args {
		if strings.Contains(a, "kiln") {
			return true
		}
	}
	return false
}

// valuesInput returns what the key of a run step or test running args
// gets of the template values: their digest, when it can read them.
func (r *run) valuesInput(args []string) ([]v1.Hash, error) {
	if err := r.toolboxInit(); err != nil {
		return nil, err
	}
	if !r.tb.any || !usesValues(args) || !r.toolboxActive() {
		return nil, nil
	}
	return []v1.Hash{r.tb.digest}, nil
}

// toolboxMounts returns the /.kiln mounts of the containers of stage
// that run args.
func (r *run) toolboxMounts(ctx context.Context, stage *manifest.Stage, args []string) ([]engine.Mount, error) {
	if err := r.toolboxInit(); err != nil || !r.toolboxActive() {
		return nil, err
	}
	tools, err := r.stageTools(ctx, stage)
	if err != nil {
		return nil, err
	}
	values := ""
	if usesValues(args) {
		values = r.tb.values
	}
	return toolbox.Mounts(r.opts.KilnBinary, values, tools), nil
}

// toolboxRecord returns what the /.kiln of a debugger's shell in stage
// is made of (toolboxMounts with the values), or nil when the build's
// containers get none.
func (r *run) toolboxRecord(ctx context.Context, stage *manifest.Stage) (*toolbox.Record, error) {
	if err := r.toolboxInit(); err != nil || !r.toolboxActive() {
		return nil, err
	}
	tools, err := r.stageTools(ctx, stage)
	if err != nil {
		return nil, err
	}
	return toolbox.NewRecord(r.opts.KilnBinary, r.b.Values, tools), nil
}

// stageTools resolves the toolbox: entries of stage, once.
func (r *run) stageTools(ctx context.Context, stage *manifest.Stage) ([]toolbox.Tool, error) {
	r.tb.mu.Lock()
	defer r.tb.mu.Unlock()
	if ts, ok := r.tb.stages[stage]; ok {
		return ts, nil
	}
	var tools []toolbox.Tool
	seen := map[string]string{}
	for _, spec := range stage.Toolbox {
		e, err := toolbox.ParseEntry(spec)
		if err != nil {
			return nil, manifest.Errorf(stage.Pos, "%v", err)
		}
		if other, ok := seen[e.Name]; ok {
			return nil, manifest.Errorf(stage.Pos, "toolbox %q and %q are both named %s: name one NAME=%s", other, spec, e.Name, spec)
		}
		seen[e.Name] = spec
		t, err := r.resolveTool(ctx, e)
		if err != nil {
			return nil, manifest.Errorf(stage.Pos, "toolbox %q: %v", spec, err)
		}
		t.Entry = spec
		tools = append(tools, t)
	}
	if r.tb.stages == nil {
		r.tb.stages = map[*manifest.Stage][]toolbox.Tool{}
	}
	r.tb.stages[stage] = tools
	return tools, nil
}

// resolveTool finds the host directories of a toolbox entry: a
// directory of the build context, or an image's unpacked layers.
func (r *run) resolveTool(ctx context.Context, e toolbox.Entry) (toolbox.Tool, error) {
	t := toolbox.Tool{Name: e.Name, Image: e.Image}
	if e.Image != "" {
		img, err := r.opts.Base(ctx, e.Image)
		if err != nil {
			return t, err
		}
		if img == nil {
			return t, nil // scratch: an empty directory
		}
		d, err := img.Digest()
		if err != nil {
			return t, err
		}
		t.Digest = d.String()
		dirs, err := r.opts.Store.LayerDirs(ctx, img)
		if err != nil {
			return t, err
		}
		t.Dirs, err = r.stack(ctx, dirs)
		return t, err
	}
	// A directory of the build context, or (an absolute path, which
	// only the inlining of a registry module writes) of a module
	// unpacked under the root's modules/.
	base, dir, where := r.b.Context, filepath.Clean(e.Dir), "the build context"
	if filepath.IsAbs(dir) {
		base, where = filepath.Join(r.opts.Store.Root(), "modules"), "kiln's module cache"
		rel, err := filepath.Rel(base, dir)
		if err != nil || !filepath.IsLocal(rel) {
			return t, fmt.Errorf("%s is not in %s", e.Dir, where)
		}
		dir = rel
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return t, err
	}
	defer root.Close()
	fi, err := root.Stat(dir)
	if err != nil {
		return t, fmt.Errorf("not in %s: %w", where, err)
	}
	if !fi.IsDir() {
		return t, fmt.Errorf("%s is not a directory", e.Dir)
	}
	t.Dirs = []string{filepath.Join(base, dir)}
	return t, nil
}

// dropToolbox removes the values file.
func (r *run) dropToolbox() {
	if r.tb.values != "" {
		os.Remove(r.tb.values)
	}
}
