package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/progress"
	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/manifest/lock"
)

func newLockCommand(a *app) *cobra.Command {
	var f manifestFlags
	c := &cobra.Command{
		Use:   "lock [flags] [CONTEXT]",
		Short: "Pin every base image and registry module of a manifest by digest in kiln.lock",
		Long: `Lock resolves, now, every base image reference that names a registry
(REGISTRY/REPO:TAG) and every registry module (use: oci://…) of the manifest,
and writes their digests to kiln.lock beside it. kiln build --locked then uses
exactly those digests, and kiln build warns when the lock is stale.`,
		Example: `  kiln lock -f app.yml
  kiln build --locked -f app.yml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			path, opts, err := f.options(args)
			if err != nil {
				return err
			}
			b, err := manifest.Load(ctx, path, opts)
			if err != nil {
				return err
			}
			now, err := a.resolveNow(ctx, b)
			if err != nil {
				return err
			}
			out := lock.PathFor(path)
			if err := lock.Write(out, now); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %s: %s, %s\n", out, progress.Count(len(now.Images), "image"), progress.Count(len(now.Modules), "module"))
			return nil
		},
	}
	f.add(c)
	f.modules = &appModules{a: a}
	return c
}

// registryBases returns the base image references of b that name a
// registry, by tag (a reference by digest pins itself): what a lock pins.
func registryBases(b *manifest.Build) []string {
	var refs []string
	seen := map[string]bool{}
	for _, s := range b.Stages {
		if b.StageByName(s.From) == nil && !seen[s.From] && registry.HasHost(s.From) && !strings.Contains(s.From, "@") {
			seen[s.From] = true
			refs = append(refs, s.From)
		}
	}
	return refs
}

// resolveNow returns the digests b's bases and registry modules have
// now: the modules as Load resolved them, the bases from their registry.
func (a *app) resolveNow(ctx context.Context, b *manifest.Build) (*lock.File, error) {
	now := &lock.File{Images: map[string]string{}, Modules: map[string]string{}, Platforms: map[string]map[string]string{}}
	for _, m := range b.Modules {
		if m.Digest != "" {
			now.Modules[m.Source] = m.Digest
		}
	}
	refs := registryBases(b)
	if len(refs) == 0 {
		return now, nil
	}
	rc, err := a.registry()
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		r, err := rc.Reference(ref)
		if err != nil {
			return nil, err
		}
		d, ms, err := rc.Manifests(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("resolving base image %s: %w", ref, err)
		}
		now.Images[ref] = d.Digest.String()
		if ps := platformDigests(ms); d.MediaType.IsIndex() {
			now.Platforms[ref] = ps
		}
	}
	return now, nil
}

// platformDigests returns the digest of each platform's image of an
// index's manifests (attestations, of platform unknown/unknown, aside).
func platformDigests(ms []v1.Descriptor) map[string]string {
	ps := map[string]string{}
	for _, m := range ms {
		if m.MediaType.IsImage() && m.Platform != nil && m.Platform.OS != "unknown" {
			ps[platform.FromOCI(m.Platform.OS, m.Platform.Architecture, m.Platform.Variant).String()] = m.Digest.String()
		}
	}
	return ps
}

// lockFor reads the lock of the manifest at path for kiln build --locked
// and pins the flags' modules to it; without --locked it returns nil.
func (a *app) lockFor(f *buildFlags, path string) (*lock.File, error) {
	if !f.locked {
		return nil, nil
	}
	lk, err := lock.Read(lock.PathFor(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--locked: no %s beside %s: run kiln lock -f %s", lock.Name, path, path)
	}
	if err != nil {
		return nil, err
	}
	f.modules.pins, f.modules.locked = lk.Modules, true
	return lk, nil
}

// pinned returns the reference lk pins ref to for platform p (that of
// p's image when ref names an index), or ref.
func pinned(lk *lock.File, ref string, p platform.Platform) string {
	if lk != nil {
		if pin, ok, pok := lk.PinFor(ref, p.String()); ok && pok {
			return pin
		}
	}
	return ref
}

// checkLock, with --locked (lk not nil), makes b's bases the locked
// digests, failing for one the lock does not have; without, it warns
// when the manifest's lock file is stale.
func (a *app) checkLock(ctx context.Context, b *manifest.Build, path string, lk *lock.File) error {
	if lk != nil {
		for _, s := range b.Stages {
			if b.StageByName(s.From) != nil || !registry.HasHost(s.From) || strings.Contains(s.From, "@") {
				continue
			}
			p := executor.StagePlatform(b, s)
			pin, ok, pok := lk.PinFor(s.From, p.String())
			if !ok {
				return manifest.Errorf(s.Pos, "--locked: base image %s is not in %s: run kiln lock -f %s", s.From, lock.Name, path)
			}
			if !pok {
				return manifest.Errorf(s.Pos, "--locked: %s has no digest of base image %s for %s: run kiln lock -f %s", lock.Name, s.From, p, path)
			}
			s.From = pin
		}
		return nil
	}
	old, err := lock.Read(lock.PathFor(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "kiln: warning: %v\n", err)
		return nil
	}
	now, err := a.resolveNow(ctx, b)
	if err != nil {
		fmt.Fprintf(a.stderr, "kiln: warning: could not check %s: %v\n", lock.Name, err)
		return nil
	}
	for _, d := range old.Compare(now) {
		fmt.Fprintf(a.stderr, "kiln: warning: %s is stale: %s (run kiln lock -f %s, or build with --locked)\n", lock.Name, d, path)
	}
	return nil
}
