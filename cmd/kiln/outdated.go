package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/executor/history"
	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/manifest/lock"
)

// basePulls are the bases kiln build --pull fetched from their registry
// again: each once per build, though a Dockerfile's config and the
// executor both ask.
type basePulls struct {
	mu   sync.Mutex
	done map[string]*pulled
}

type pulled struct {
	once sync.Once
	img  v1.Image
	err  error
}

// pull fetches ref from its registry into the store (once) and returns
// it from the store, whose copy has its layers unpacked once.
func (p *basePulls) pull(ctx context.Context, a *app, s *store.Store, ref string) (v1.Image, error) {
	p.mu.Lock()
	if p.done == nil {
		p.done = map[string]*pulled{}
	}
	r := p.done[ref]
	if r == nil {
		r = &pulled{}
		p.done[ref] = r
	}
	p.mu.Unlock()
	r.once.Do(func() {
		if r.img, r.err = a.pullInto(ctx, s, ref); r.err != nil {
			full, _ := store.FullName(ref)
			r.err = fmt.Errorf("pulling %s: %w", full, r.err)
		}
	})
	return r.img, r.err
}

// pullInto fetches ref from its registry (a short name is Docker Hub's)
// and tags it in the store.
func (a *app) pullInto(ctx context.Context, s *store.Store, ref string) (v1.Image, error) {
	rc, err := a.registry()
	if err != nil {
		return nil, err
	}
	r, err := rc.Reference(ref)
	if err != nil {
		return nil, err
	}
	img, err := rc.Image(ctx, r)
	if err != nil {
		return nil, err
	}
	if _, err := s.Tag(ctx, img, storeTag(ref)); err != nil {
		return nil, fmt.Errorf("storing %s: %w", ref, err)
	}
	return s.Image(ctx, ref)
}

// storeTag is the name the store keeps the base ref under: ref, or for
// a pinned base (kiln build --locked), which the store cannot name by its
// digest, REPO:sha256-HEX (where the store finds REPO@sha256:HEX).
func storeTag(ref string) string {
	if repo, d, ok := strings.Cut(ref, "@"); ok {
		return repo + ":" + strings.ReplaceAll(d, ":", "-")
	}
	return ref
}

func newOutdatedCommand(a *app) *cobra.Command {
	var f manifestFlags
	c := &cobra.Command{
		Use:   "outdated [flags] [CONTEXT]",
		Short: "List the base images whose registry has a newer digest than the last build used",
		Long: `Outdated asks the registry of each base image reference of the manifest that
names one (HOST/REPO:TAG) for its current digest, and lists those that differ
from the digest the last build of the manifest used. It prints nothing and
exits 0 when all are current, and exits 1 when it lists any (as npm outdated
does); kiln build --pull rebuilds with the newer ones.

When the manifest has a kiln.lock, outdated compares the lock instead: every
locked base image and registry module whose reference names another digest
now, and any the lock lacks; kiln lock updates it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.outdated(cmd.Context(), f, args)
		},
	}
	f.add(c)
	f.modules = &appModules{a: a}
	return c
}

func (a *app) outdated(ctx context.Context, f manifestFlags, args []string) error {
	if done, err := a.outdatedLock(ctx, f, args); done || err != nil {
		return err
	}
	path, recs, err := a.recordsOf(ctx, f, args)
	if err != nil {
		return err
	}
	b, err := f.load(ctx, args)
	if err != nil {
		return err
	}
	refs := registryBases(b)
	if len(refs) == 0 {
		return nil
	}
	if len(recs) == 0 {
		return fmt.Errorf("no build record of %s: build it first (kiln build), then ask again", path)
	}
	rc, err := a.registry()
	if err != nil {
		return err
	}
	outdated := false
	for _, ref := range refs {
		used := lastBases(recs, ref)
		if len(used) == 0 {
			fmt.Fprintf(a.stderr, "kiln: note: %s: no build of %s used it yet\n", ref, path)
			continue
		}
		r, err := rc.Reference(ref)
		if err != nil {
			return err
		}
		for _, u := range used {
			name, current := ref, ""
			if u.Platform == "" {
				current, err = a.currentDigest(ctx, rc, r, u.Digest)
			} else {
				// a build for several platforms: the image of the
				// platform the stage was built for
				name += " (" + u.Platform + ")"
				current, err = platformDigest(ctx, rc, r, u.Platform)
			}
			if err != nil {
				return fmt.Errorf("asking the registry for %s: %w", ref, err)
			}
			if current != u.Digest {
				fmt.Fprintf(a.stdout, "%s\tused %s\tnow %s\n", name, u.Digest, current)
				outdated = true
			}
		}
	}
	return outdatedStatus(outdated)
}

// platformDigest returns the digest of the image of platform p that ref
// names now: an index's image for p, or the image ref names.
func platformDigest(ctx context.Context, rc *registry.Client, r name.Reference, p string) (string, error) {
	d, ms, err := rc.Manifests(ctx, r)
	if err != nil {
		return "", err
	}
	if !d.MediaType.IsIndex() {
		return d.Digest.String(), nil
	}
	if pd, ok := platformDigests(ms)[p]; ok {
		return pd, nil
	}
	return "", fmt.Errorf("%s has no image for %s now", r, p)
}

// outdatedStatus is how kiln outdated ends: status 1 when it listed
// something.
func outdatedStatus(outdated bool) error {
	if outdated {
		return exitError{exitFailed}
	}
	return nil
}

// currentDigest returns the digest of the image ref names now, as a
// build would resolve it: a HEAD request, then, for an index (a tag of
// several platforms) whose digest is not the one used, its image for
// kiln's platform.
func (a *app) currentDigest(ctx context.Context, rc *registry.Client, r name.Reference, used string) (string, error) {
	d, err := rc.Head(ctx, r)
	if err != nil {
		return "", err
	}
	if d.Digest.String() == used || !d.MediaType.IsIndex() {
		return d.Digest.String(), nil
	}
	img, err := rc.Image(ctx, r)
	if err != nil {
		return "", err
	}
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// lastBases returns the bases named ref in the newest of recs (oldest
// first) that used it: one, or of a build for several platforms, one per
// platform (each once).
func lastBases(recs []*history.Record, ref string) []history.Base {
	for i := len(recs) - 1; i >= 0; i-- {
		var out []history.Base
		for _, b := range recs[i].Bases {
			if b.Ref == ref && b.Digest != "" && !slices.ContainsFunc(out, func(o history.Base) bool { return o.Platform == b.Platform }) {
				out = append(out, b)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// recordsOf returns the absolute path of the manifest the flags name and
// its build records, oldest first.
func (a *app) recordsOf(ctx context.Context, f manifestFlags, args []string) (string, []*history.Record, error) {
	path, _, err := f.options(args)
	if err != nil {
		return "", nil, err
	}
	abs, err := absPath(path)
	if err != nil {
		return "", nil, err
	}
	hs, err := a.history()
	if err != nil {
		return "", nil, err
	}
	recs, err := hs.Of(ctx, abs)
	return abs, recs, err
}

// outdatedLock lists what differs between the manifest's kiln.lock and
// what its references resolve to now; it reports false when there is no
// lock.
func (a *app) outdatedLock(ctx context.Context, f manifestFlags, args []string) (bool, error) {
	path, opts, err := f.options(args)
	if err != nil {
		return false, err
	}
	old, err := lock.Read(lock.PathFor(path))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	b, err := manifest.Load(ctx, path, opts)
	if err != nil {
		return true, badInput(err)
	}
	now, err := a.resolveNow(ctx, b)
	if err != nil {
		return true, err
	}
	diffs := old.Compare(now)
	for _, d := range diffs {
		locked := d.Locked
		if locked == "" {
			locked = "(not locked)"
		}
		fmt.Fprintf(a.stdout, "%s\tlocked %s\tnow %s\n", d.Ref, locked, d.Now)
	}
	return true, outdatedStatus(len(diffs) > 0)
}
