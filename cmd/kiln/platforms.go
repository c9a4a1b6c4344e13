package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine/binfmt"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/executor/history"
	"github.com/kiln-build/kiln/executor/progress"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/manifest/lock"
)

// platforms returns the platforms of --platform, none when not given.
func (f *buildFlags) platforms() ([]platform.Platform, error) {
	if f.platform == "" {
		return nil, nil
	}
	ps, err := platform.ParseList(f.platform)
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	return ps, nil
}

// manifestPlatforms parses a manifest's platforms: list.
func manifestPlatforms(b *manifest.Build) ([]platform.Platform, error) {
	if len(b.Platforms) == 0 {
		return nil, nil
	}
	return platform.ParseList(strings.Join(b.Platforms, ","))
}

// resolveBaseFor finds a stage's base for platform p: the store's image
// of that platform (an index's, or an image whose config is p's), else
// the registry's, pulled for p. A base without p is an error naming the
// base and the platform.
func (a *app) resolveBaseFor(ctx context.Context, s *store.Store, ref string, p platform.Platform) (v1.Image, error) {
	if ref == "scratch" {
		return nil, nil
	}
	if store.IsTransport(ref) {
		img, err := s.ResolveFor(ctx, ref, p)
		if err != nil {
			return nil, err
		}
		return img, checkPlatform(ref, img, p)
	}
	img, err := s.ImageFor(ctx, ref, p)
	if err == nil || !errors.Is(err, store.ErrNotFound) || !registry.HasHost(ref) {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("not in the local store (kiln images lists it; import or pull it first): %w", err)
		}
		return img, err
	}
	rc, err := a.registry()
	if err != nil {
		return nil, err
	}
	r, err := rc.Reference(ref)
	if err != nil {
		return nil, err
	}
	img, err = rc.ImageFor(ctx, r, p.OCI())
	if err != nil {
		return nil, fmt.Errorf("pulling %s for %s: %w", ref, p, err)
	}
	if err := checkPlatform(ref, img, p); err != nil {
		return nil, err
	}
	if _, err := s.TagPlatform(ctx, img, storeTag(ref)); err != nil {
		return nil, fmt.Errorf("storing %s: %w", ref, err)
	}
	return s.ImageFor(ctx, ref, p)
}

// checkPlatform says whether img, the base ref, is p's.
func checkPlatform(ref string, img v1.Image, p platform.Platform) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the config of %s: %w", ref, err)
	}
	if got := platform.FromOCI(cf.OS, cf.Architecture, cf.Variant); !p.Matches(got) {
		return fmt.Errorf("the base %s has no image for %s (it is %s): %w", ref, p, got, store.ErrNoPlatform)
	}
	return nil
}

// platformObserver names each node of one platform's build in a
// multi-platform build: its key gets the build's platform before it (so
// keys stay unique across the builds), its name the platform it runs for.
type platformObserver struct {
	next     fsm.Observer
	target   string
	platform map[string]string // node key → the platform its stage is built for
}

func (o *platformObserver) key(k string) string { return o.target + " " + k }

func (o *platformObserver) Event(e fsm.Event) {
	e.Name = "[" + o.platform[e.Node] + "] " + e.Name
	e.Node = o.key(e.Node)
	o.next.Event(e)
}

func (o *platformObserver) Output(node string, p []byte) { o.next.Output(o.key(node), p) }

// platformBuild is one platform's part of a multi-platform build.
type platformBuild struct {
	p   platform.Platform
	b   *manifest.Build
	g   *dag.Graph
	res *executor.Result
	err error
}

// nodePlatforms returns the platform each node of pb is built for: its
// stage's.
func (pb *platformBuild) nodePlatforms() map[string]string {
	m := map[string]string{}
	for _, n := range pb.g.Nodes() {
		m[n.Key] = executor.StagePlatform(pb.b, n.Stage).String()
	}
	return m
}

// platformsRecord is the record of a build for several platforms: each
// platform's nodes, their keys after the platform built for (as progress
// names them) and their names after the platform they ran for.
func platformsRecord(path string, builds []*platformBuild, f manifestFlags, timer *history.Timer) *history.Record {
	rec := newRecord(path, builds[0].b, builds[0].g, f, nil, nil)
	for _, pb := range builds {
		rec.Platforms = append(rec.Platforms, pb.p.String())
		if pb.res == nil {
			continue
		}
		one := newRecord(path, pb.b, pb.g, f, pb.res, nil)
		plat := pb.nodePlatforms()
		prefix := pb.p.String() + " "
		for _, n := range one.Nodes {
			n.Name = "[" + plat[n.Key] + "] " + n.Name
			n.Duration = history.Duration(timer.Duration(prefix + n.Key))
			n.Key = prefix + n.Key
			if n.Parent != "" {
				n.Parent = prefix + n.Parent
			}
			rec.Nodes = append(rec.Nodes, n)
		}
		for _, b := range one.Bases {
			b.Platform = executor.StagePlatform(pb.b, pb.b.StageByName(b.Stage)).String()
			rec.Bases = append(rec.Bases, b)
		}
	}
	return rec
}

// buildPlatforms builds the manifest at path for each platform at once,
// sharing the --jobs slots and the cache (a step of the same key runs
// once), and makes an image index of the images. It returns the index's
// digest, the results merged, their keys and names prefixed by
// platform, and each platform's build.
func (a *app) buildPlatforms(ctx context.Context, f *buildFlags, plats []platform.Platform, path string, opts manifest.Options,
	s *store.Store, lk *lock.File, obs fsm.Observer, base executor.Options) (v1.ImageIndex, *executor.Result, []*platformBuild, error) {
	builds := make([]*platformBuild, len(plats))
	for i, p := range plats {
		o := opts
		o.Platform = p
		o.ResolveBase = func(ctx context.Context, ref string) (*manifest.ImageConfig, error) {
			img, err := a.resolveBaseFor(ctx, s, pinned(lk, ref, p), p)
			if err != nil || img == nil {
				return nil, err
			}
			return imageConfigOf(ref, img)
		}
		b, err := manifest.Load(ctx, path, o)
		if err != nil {
			return nil, nil, nil, badInput(err)
		}
		if lk != nil || i == 0 { // pin each platform's bases, or warn once of a stale lock
			if err := a.checkLock(ctx, b, path, lk); err != nil {
				return nil, nil, nil, badInput(err)
			}
		}
		g, err := dag.Compile(b)
		if err != nil {
			return nil, nil, nil, badInput(err)
		}
		builds[i] = &platformBuild{p: p, b: b, g: g}
	}
	bctx, err := buildctx.Open(builds[0].b.Context, buildctx.WithWarn(func(m string) { fmt.Fprintf(a.stderr, "kiln: warning: %s\n", m) }))
	if err != nil {
		return nil, nil, nil, badInput(err)
	}
	for _, pb := range builds {
		if err := checkInputs(pb.b, pb.g, bctx); err != nil {
			return nil, nil, nil, badInput(err)
		}
	}
	base.Context = bctx
	base.Slots = executor.NewSlots(base.Jobs, base.Containers)
	base.BaseFor = func(ctx context.Context, ref string, p platform.Platform) (v1.Image, error) {
		return a.resolveBaseFor(ctx, s, ref, p)
	}
	var wg sync.WaitGroup
	for _, pb := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := base
			o.Observer = &platformObserver{next: obs, target: pb.p.String(), platform: pb.nodePlatforms()}
			pb.res, pb.err = executor.Build(ctx, pb.b, pb.g, o)
		}()
	}
	wg.Wait()
	res := &executor.Result{States: map[string]fsm.State{}, Inputs: map[string]executor.NodeInputs{}}
	var errs []error
	idx := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for _, pb := range builds {
		if pb.res != nil {
			mergeResult(res, pb.res, pb.p.String())
		}
		if pb.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", pb.p, pb.err))
			continue
		}
		p := pb.p.OCI()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: pb.res.Image, Descriptor: v1.Descriptor{Platform: &p}})
	}
	if len(errs) > 0 {
		return nil, res, builds, errors.Join(errs...)
	}
	return idx, res, builds, nil
}

// mergeResult adds r, one platform's, to res.
func mergeResult(res, r *executor.Result, p string) {
	for k, st := range r.States {
		res.States[p+" "+k] = st
	}
	for k, in := range r.Inputs {
		res.Inputs[p+" "+k] = in
	}
	for _, t := range r.Tests {
		t.Name = "[" + p + "] " + t.Name
		res.Tests = append(res.Tests, t)
	}
	for _, fl := range r.Failed {
		fl.Name = "[" + p + "] " + fl.Name
		res.Failed = append(res.Failed, fl)
	}
}

// imageConfigOf is what a Dockerfile needs of a base image's config.
func imageConfigOf(ref string, img v1.Image) (*manifest.ImageConfig, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of %s: %w", ref, err)
	}
	ic := &manifest.ImageConfig{Shell: cf.Config.Shell, OnBuild: cf.Config.OnBuild}
	for _, e := range cf.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		ic.Env = append(ic.Env, manifest.KV{Key: k, Value: v})
	}
	return ic, nil
}

// storeIndex tags (or keeps untagged) the index idx of images.
func storeIndex(ctx context.Context, s *store.Store, idx v1.ImageIndex, tags []string) (v1.Hash, error) {
	images, err := indexImages(idx)
	if err != nil {
		return v1.Hash{}, err
	}
	if len(tags) == 0 {
		return s.KeepIndex(ctx, images)
	}
	var d v1.Hash
	for _, t := range tags {
		if d, err = s.TagIndex(ctx, images, t); err != nil {
			return v1.Hash{}, err
		}
	}
	return d, nil
}

// indexImages lists the images of idx with their platforms.
func indexImages(idx v1.ImageIndex) ([]store.PlatformImage, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []store.PlatformImage
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, store.PlatformImage{Platform: platform.FromOCI(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant), Image: img})
	}
	return out, nil
}

// writeIndex writes --output o of a multi-platform build: the whole
// index to an OCI layout; a platform's image (the host's, or the one
// o names with platform=) elsewhere.
func (o output) writeIndex(ctx context.Context, idx v1.ImageIndex, tags []string) error {
	if o.typ == "oci" && strings.HasSuffix(o.dest, ".tar") {
		return toOCIArchive(ctx, o.dest, func(dir string) error { return store.ExportIndex(ctx, idx, dir, layoutTag(tags)) })
	}
	if o.typ == "oci" {
		return store.ExportIndex(ctx, idx, filepath.Clean(o.dest), layoutTag(tags))
	}
	want := platform.Host()
	if o.platform != "" {
		p, err := platform.Parse(o.platform)
		if err != nil {
			return err
		}
		want = p
	}
	images, err := indexImages(idx)
	if err != nil {
		return err
	}
	for _, pi := range images {
		if want.Matches(pi.Platform) {
			return o.write(ctx, pi.Image, tags)
		}
	}
	return fmt.Errorf("--output type=%s: the build made no image for %s (platform=OS/ARCH chooses another)", o.typ, want)
}

// recompressIndex returns idx with each image's layers compressed as
// gzip (store.Recompress).
func recompressIndex(ctx context.Context, s *store.Store, idx v1.ImageIndex) (v1.ImageIndex, error) {
	images, err := indexImages(idx)
	if err != nil {
		return nil, err
	}
	out := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for _, pi := range images {
		img, err := s.Recompress(ctx, pi.Image, store.Gzip)
		if err != nil {
			return nil, err
		}
		p := pi.Platform.OCI()
		out = mutate.AppendManifests(out, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return out, nil
}

// pushIndex pushes idx to the registry of each tag.
func (a *app) pushIndex(ctx context.Context, idx v1.ImageIndex, tags []string) error {
	return a.pushEach(ctx, tags, func(rc *registry.Client, ref name.Reference) error { return rc.PushIndex(ctx, idx, ref) })
}

// singleBaseFor is the executor's BaseFor of a build for one platform
// named by --platform (or a manifest's platforms:), nil for a build for
// the host.
func singleBaseFor(a *app, s *store.Store, plats []platform.Platform) func(context.Context, string, platform.Platform) (v1.Image, error) {
	if len(plats) == 0 {
		return nil
	}
	return func(ctx context.Context, ref string, p platform.Platform) (v1.Image, error) {
		return a.resolveBaseFor(ctx, s, ref, p)
	}
}

// refuseFor refuses the debugger's flags for a build for several
// platforms. The debugger stops one build's steps at a prompt on one
// terminal; each platform's build is a graph of its own whose steps run
// at once with the others', so a breakpoint would stop once per
// platform, prompts racing for the terminal, and its shell would run the
// foreign platform's programs under emulation. A build for one platform
// (--platform OS/ARCH) is that platform's part of the build, with the same
// steps and cache keys: debugging it debugs what failed.
func (f *debugFlags) refuseFor(plats []platform.Platform) error {
	var flag string
	switch {
	case f.debug:
		flag = "--debug"
	case f.onFail:
		flag = "--debug-on-fail"
	case len(f.breaks) > 0:
		flag = "--break"
	default:
		return nil
	}
	names := make([]string, len(plats))
	for i, p := range plats {
		names[i] = p.String()
	}
	return fmt.Errorf("%s stops one build at a prompt, and --platform %s makes a build for each platform: debug one platform's build with --platform %s (or %s), the same steps and cache keys as its part of this build",
		flag, strings.Join(names, ","), names[len(names)-1], strings.Join(names[:len(names)-1], ", "))
}

// buildIndex is kiln build for several platforms: base holds the
// executor options of the command line.
func (a *app) buildIndex(ctx context.Context, f *buildFlags, plats []platform.Platform, path string, opts manifest.Options, s *store.Store, lk *lock.File,
	view *buildView, start time.Time, outputs []output, res **executor.Result, digest *string, base executor.Options) error {
	if err := f.debug.refuseFor(plats); err != nil {
		return badInput(err)
	}
	sn, rt, err := a.engine(ctx)
	if err != nil {
		return err
	}
	c, err := cache.Open(ctx, s)
	if err != nil {
		return err
	}
	kiln, err := kilnBinary(f.kilnBinary)
	if err != nil {
		return err
	}
	cacheTo, cacheFrom, err := f.cacheSpecs()
	if err != nil {
		return badInput(err)
	}
	pctx, stop := f.phase(ctx)
	remote, err := a.cacheSource(pctx, s, c, cacheFrom)
	if err := f.phaseEnd(ctx, pctx, stop, "opening --cache-from", err); err != nil {
		return err
	}
	base.Cache, base.Snapshotter, base.Runtime, base.KilnBinary, base.Remote = c, sn, rt, kiln, remote
	obs := base.Observer
	idx, r, builds, err := a.buildPlatforms(ctx, f, plats, path, opts, s, lk, obs, base)
	*res = r
	var d v1.Hash
	if err == nil && exportsImage(outputs, f.push) {
		// What is written out has its layers compressed, and is what
		// the store keeps (see build).
		idx, err = recompressIndex(ctx, s, idx)
	}
	if err == nil {
		d, err = storeIndex(ctx, s, idx, f.tags)
	}
	if builds != nil {
		rec := platformsRecord(path, builds, f.manifestFlags, view.timer)
		if err == nil {
			rec.Digest = d.String()
		}
		a.writeRecord(ctx, *f, rec, view, start, err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return interruptedError{}
		}
		if executor.IsStepFailure(err) {
			return withCode(exitFailed, fmt.Errorf("build failed: %w", err))
		}
		var me *manifest.Error
		if errors.As(err, &me) {
			return err
		}
		return fmt.Errorf("build failed: %w", err)
	}
	for _, o := range outputs {
		pctx, stop := f.phase(ctx)
		err := o.writeIndex(pctx, idx, f.tags)
		if err := f.phaseEnd(ctx, pctx, stop, "writing "+o.dest, err); err != nil {
			return err
		}
	}
	if f.push {
		pctx, stop := f.phase(ctx)
		err := a.pushIndex(pctx, idx, f.tags)
		if err := f.phaseEnd(ctx, pctx, stop, "pushing", err); err != nil {
			return err
		}
	}
	pctx, stop = f.phase(ctx)
	err = a.exportCacheKeys(pctx, s, c, cacheTo, func(mode string) []cache.Key {
		var keys []cache.Key
		for _, pb := range builds {
			keys = append(keys, cacheKeys(pb.g, pb.res, mode)...)
		}
		return keys
	})
	if err := f.phaseEnd(ctx, pctx, stop, "exporting the cache", err); err != nil {
		return err
	}
	ran, cached := 0, 0
	for _, pb := range builds {
		if pb.res == nil {
			continue
		}
		r, c := countStates(pb.g, pb.res.States)
		ran, cached = ran+r, cached+c
	}
	if f.progress != "json" && !f.quiet && !view.summarises() {
		names := make([]string, len(plats))
		for i, p := range plats {
			names[i] = p.String()
		}
		fmt.Fprintf(a.stderr, "built %s (%s) in %s: %s ran, %d cached\n", d, strings.Join(names, ", "), time.Since(start).Round(time.Millisecond), progress.Count(ran, "node"), cached)
	}
	*digest = d.String()
	if view.json == nil {
		fmt.Fprintln(a.stdout, d)
	}
	return nil
}

// runImage is the image kiln run runs: ref's, or with --platform p the
// image of ref for p, whose programs must then run here.
func (a *app) runImage(ctx context.Context, s *store.Store, ref, p string) (v1.Image, error) {
	if p == "" {
		return s.Resolve(ctx, ref)
	}
	pl, err := platform.Parse(p)
	if err != nil {
		return nil, badInput(fmt.Errorf("--platform: %w", err))
	}
	if !binfmt.Native(pl.Arch) {
		if err := binfmt.Check(binfmt.DefaultPaths(), pl.Arch); err != nil {
			return nil, err
		}
	}
	if store.IsTransport(ref) {
		return a.resolveBaseFor(ctx, s, ref, pl)
	}
	return s.ImageFor(ctx, ref, pl)
}

// loadGraph loads and compiles the manifest the flags name for the
// platforms plats names (os/arch, comma-separated), else for the
// manifest's platforms: list, else for this machine. For several
// platforms it is their graphs side by side (dag.Merge), each node's key
// after the platform built for and its name after the platform its stage
// is for, as progress and the build record name them.
func (f *manifestFlags) loadGraph(ctx context.Context, args []string, plats string) (*dag.Graph, error) {
	path, opts, err := f.options(args)
	if err != nil {
		return nil, err
	}
	var ps []platform.Platform
	if plats != "" {
		if ps, err = platform.ParseList(plats); err != nil {
			return nil, badInput(fmt.Errorf("--platform: %w", err))
		}
	}
	if len(ps) == 0 {
		b, err := f.load(ctx, args)
		if err != nil {
			return nil, err
		}
		if ps, err = manifestPlatforms(b); err != nil {
			return nil, badInput(err)
		}
		if len(ps) == 0 {
			return dag.Compile(b)
		}
	}
	var parts []dag.Part
	for _, p := range ps {
		o := opts
		o.Platform = p
		b, err := manifest.Load(ctx, path, o)
		if err != nil {
			return nil, badInput(err)
		}
		g, err := dag.Compile(b)
		if err != nil {
			return nil, err
		}
		if len(ps) == 1 {
			return g, nil
		}
		parts = append(parts, dag.Part{Prefix: p.String(), Graph: g, Label: func(n *dag.Node) string {
			return "[" + executor.StagePlatform(b, n.Stage).String() + "] " + n.Name
		}})
	}
	return dag.Merge(parts), nil
}
