package executor

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine/binfmt"
	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/manifest"
)

// Slots are the bounds on kiln's own work and on running containers that
// several builds running at once share (a build for each platform of a
// multi-platform build): see Options.Jobs and Options.Containers.
type Slots struct {
	jobs, ctrs chan struct{}
}

// NewSlots returns jobs job slots and containers container slots (the
// defaults of Options.Jobs and Options.Containers for a zero value).
func NewSlots(jobs, containers int) *Slots {
	o := Options{Jobs: jobs, Containers: containers}
	o.defaults()
	return &Slots{jobs: make(chan struct{}, o.Jobs), ctrs: make(chan struct{}, o.Containers)}
}

// StagePlatform is the platform stage s of b is built for: its own, else
// that of the stage it is FROM, else the build's, else the host's.
func StagePlatform(b *manifest.Build, s *manifest.Stage) platform.Platform {
	for seen := 0; s != nil && seen <= len(b.Stages); seen++ {
		if s.Platform != "" {
			if p, err := platform.Parse(s.Platform); err == nil {
				return p
			}
		}
		s = b.StageByName(s.From)
	}
	if b.Platform != "" {
		if p, err := platform.Parse(b.Platform); err == nil {
			return p
		}
	}
	return platform.Host()
}

// foreign returns the platform of n when it is not the host's.
func (r *run) foreign(n *dag.Node) (platform.Platform, bool) {
	p := StagePlatform(r.b, n.Stage)
	return p, p != platform.Host()
}

// keyPlatform is what a run step's or test's key holds of its platform:
// nothing for the host's.
func (r *run) keyPlatform(n *dag.Node) string {
	if p, ok := r.foreign(n); ok {
		return p.String()
	}
	return ""
}

// emulation checks, before n's container starts, that its platform's
// programs run here, and notes in n's output that they are emulated.
func (r *run) emulation(n *dag.Node) error {
	p, ok := r.foreign(n)
	if !ok || binfmt.Native(p.Arch) {
		return nil
	}
	if err := binfmt.Check(binfmt.DefaultPaths(), p.Arch); err != nil {
		return fmt.Errorf("running a step for %s: %w", p, err)
	}
	r.obs.Output(n.Key, fmt.Appendf(nil, "kiln: emulating %s with qemu (binfmt_misc)\n", p))
	return nil
}

// base resolves the base of n's stage for the stage's platform.
func (r *run) base(ctx context.Context, n *dag.Node) (v1.Image, error) {
	if r.opts.BaseFor != nil {
		return r.opts.BaseFor(ctx, n.Stage.From, StagePlatform(r.b, n.Stage))
	}
	return r.opts.Base(ctx, n.Stage.From)
}

// withPlatform gives img, the build's image, the build's platform in its
// config when the build names one its base did not give it (scratch).
func (r *run) withPlatform(img v1.Image) (v1.Image, error) {
	if r.b.Platform == "" {
		return img, nil
	}
	p, err := platform.Parse(r.b.Platform)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if platform.FromOCI(cf.OS, cf.Architecture, cf.Variant) == p {
		return img, nil
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Arch, p.Variant
	return mutate.ConfigFile(img, cf)
}
