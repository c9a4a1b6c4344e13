package manifest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/internal/regfile"
)

// This file is the bridge from YAML manifests to Dockerfiles: a stage
// written as
//
//	stages:
//	  base: {dockerfile: ./Dockerfile, target: build, args: {VERSION: "1.2"}}
//
// is the Dockerfile's target stage (its last stage without target:), built
// as kiln builds the Dockerfile, with the stages it uses. Other stages use
// it by name (from: base, copy: {from: base}). The Dockerfile's path is
// relative to the manifest's directory; its COPY and ADD sources are in
// the build's context. args are its --build-arg values; kiln build's
// --build-arg values win over them.

// dockerfileStageKeys are the keys of a stage built from a Dockerfile.
var dockerfileStageKeys = []string{"dockerfile", "target", "args"}

// dockerfileRef is a stage of a YAML manifest that a Dockerfile builds.
type dockerfileRef struct {
	stage  *Stage // its place in Build.Stages, until expandDockerfiles
	file   string // relative to the manifest's directory
	target string // "" for the Dockerfile's last stage
	args   []string
	pos    Pos
}

// dockerfileStage decodes the stage sp when it has a dockerfile: key (ok
// is false otherwise), as a placeholder stage that expandDockerfiles
// replaces.
func (d *decoder) dockerfileStage(sp pair, what string) (*Stage, bool, error) {
	if sp.v.Kind != yaml.MappingNode {
		return nil, false, nil
	}
	has := false
	for i := 0; i+1 < len(sp.v.Content); i += 2 {
		has = has || sp.v.Content[i].Value == "dockerfile"
	}
	if !has {
		return nil, false, nil
	}
	ps, err := d.mapping(sp.v, what+" (built from a Dockerfile)", dockerfileStageKeys...)
	if err != nil {
		return nil, true, err
	}
	ref := dockerfileRef{pos: d.pos(sp.k)}
	for _, p := range ps {
		switch p.key {
		case "dockerfile":
			if ref.file, err = d.nonEmpty(p.v, "dockerfile"); err != nil {
				return nil, true, err
			}
			if err := inContext(ref.file); err != nil {
				return nil, true, &Error{Pos: d.pos(p.v), Msg: fmt.Sprintf("dockerfile %q", ref.file), Err: err}
			}
		case "target":
			if ref.target, err = d.nonEmpty(p.v, "target"); err != nil {
				return nil, true, err
			}
		case "args":
			kvs, err := d.kvs(p.v, "args")
			if err != nil {
				return nil, true, err
			}
			for _, kv := range kvs {
				ref.args = append(ref.args, kv.Key+"="+kv.Value)
			}
		}
	}
	ref.stage = &Stage{Name: sp.key, Pos: ref.pos}
	d.dockerfiles = append(d.dockerfiles, ref)
	return ref.stage, true, nil
}

// expandDockerfiles replaces each stage built from a Dockerfile with the
// Dockerfile's stages that its target needs: the target takes the YAML
// stage's name, the others are named STAGE:NAME. dir is the manifest's
// directory.
func (d *decoder) expandDockerfiles(ctx context.Context, b *Build, dir string, opts Options) error {
	for _, ref := range d.dockerfiles {
		file := filepath.Join(dir, ref.file)
		data, err := regfile.ReadFile(dir, ref.file)
		if err != nil {
			return &Error{Pos: ref.pos, Msg: fmt.Sprintf("stage %q: reading its dockerfile", ref.stage.Name), Err: err}
		}
		o := opts
		o.Target = ref.target
		o.BuildArgs = append(slices.Clone(ref.args), opts.BuildArgs...)
		df, err := parseDockerfile(ctx, file, data, o)
		if err != nil {
			return err
		}
		stages := dockerfileStages(df, ref.stage.Name)
		i := slices.Index(b.Stages, ref.stage)
		b.Stages = slices.Replace(b.Stages, i, i+1, stages...)
		b.Warnings = append(b.Warnings, df.Warnings...)
	}
	return nil
}

// dockerfileStages returns the stages of df that its target needs, renamed
// for the YAML stage name: the target is name, another stage name:STAGE.
func dockerfileStages(df *Build, name string) []*Stage {
	index := map[string]int{}
	for i, s := range df.Stages {
		index[s.Name] = i
	}
	// isStage reports whether the stage at i is FROM another stage of df
	// (always an earlier one); the stages made for --from=IMAGE, last,
	// are FROM images.
	fromStage := func(i int) bool {
		j, ok := index[df.Stages[i].From]
		return ok && j < i && !strings.HasPrefix(df.Stages[i].Name, "image:")
	}
	deps := func(i int) []string {
		s := df.Stages[i]
		var out []string
		if fromStage(i) {
			out = append(out, s.From)
		}
		for _, st := range s.Steps {
			if st.Copy != nil && st.Copy.From != "" {
				out = append(out, st.Copy.From)
			}
			for _, m := range st.Mounts {
				if m.From != "" {
					out = append(out, m.From)
				}
			}
		}
		return out
	}
	need := map[string]bool{}
	var use func(string)
	use = func(n string) {
		if need[n] {
			return
		}
		need[n] = true
		for _, dep := range deps(index[n]) {
			use(dep)
		}
	}
	use(df.Target)
	rename := func(n string) string {
		if n == df.Target {
			return name
		}
		return name + ":" + n
	}
	var out []*Stage
	for i, s := range df.Stages {
		if !need[s.Name] {
			continue
		}
		if fromStage(i) {
			s.From = rename(s.From)
		}
		for _, st := range s.Steps {
			if st.Copy != nil && st.Copy.From != "" {
				st.Copy.From = rename(st.Copy.From)
			}
			for k := range st.Mounts {
				if st.Mounts[k].From != "" {
					st.Mounts[k].From = rename(st.Mounts[k].From)
				}
			}
		}
		s.Name = rename(s.Name)
		out = append(out, s)
	}
	return out
}
