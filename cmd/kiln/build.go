package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/executor/history"
	"github.com/kiln-build/kiln/executor/junit"
	"github.com/kiln-build/kiln/executor/progress"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
)

// manifestFlags are the flags that say which manifest, with which values.
type manifestFlags struct {
	file      string
	values    []string
	set       []string
	envVars   []string
	target    string
	buildArgs []string
	frontend  string
	modules   *appModules      // resolves oci:// module sources
	stdin     func() io.Reader // where -f - reads
	stderr    func() io.Writer // where load's notes go
	stdinData []byte           // what -f - read
}

func (f *manifestFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "the manifest, or - for stdin (default: kiln.yml, then app.yml, in CONTEXT)")
	f.stdin, f.stderr = c.InOrStdin, c.ErrOrStderr
	fl.StringArrayVar(&f.values, "values", nil, "a YAML file of template values (repeatable; later ones win)")
	fl.StringArrayVar(&f.set, "set", nil, "a template value key=value; dotted keys and YAML lists allowed (repeatable)")
	fl.StringArrayVar(&f.envVars, "env-var", nil, "expose environment variable NAME to the template as env.NAME (repeatable)")
	fl.StringVar(&f.target, "target", "", "the stage that becomes the image (default: the manifest's target, else the last stage)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "a Dockerfile ARG value KEY=VALUE, or KEY to take it from the environment (repeatable)")
	fl.StringVar(&f.frontend, "frontend", "", "read the file as a dockerfile or a yaml manifest (default: a Dockerfile when named Dockerfile*, Containerfile* or *.Dockerfile, or when its first instruction is a Dockerfile instruction)")
}

// load finds and loads the manifest; args may hold the CONTEXT.
// Its errors are wrong input (exit status 2).
func (f *manifestFlags) load(ctx context.Context, args []string) (*manifest.Build, error) {
	path, opts, err := f.options(args)
	if err != nil {
		return nil, err
	}
	b, err := manifest.Load(ctx, path, opts)
	if err != nil {
		return nil, badInput(err)
	}
	for _, w := range b.Warnings {
		fmt.Fprintln(f.stderr(), "kiln: note:", w)
	}
	return b, nil
}

func (f *manifestFlags) options(args []string) (string, manifest.Options, error) {
	opts := manifest.Options{Values: f.values, Set: f.set, EnvVars: f.envVars, Getenv: os.Getenv, Target: f.target,
		BuildArgs: f.buildArgs, Frontend: f.frontend}
	if f.modules != nil {
		opts.Modules = f.modules
	}
	path := f.file
	if len(args) > 0 {
		opts.Context = args[0]
		if _, err := os.Stat(opts.Context); errors.Is(err, os.ErrNotExist) {
			return "", opts, badInput(fmt.Errorf("the build context %s does not exist", opts.Context))
		}
	}
	if path == "-" {
		return f.fromStdin(opts)
	}
	if path == "" {
		dir := opts.Context
		if dir == "" {
			dir = "."
		}
		p, err := manifest.Find(dir)
		if err != nil {
			return "", opts, badInput(err)
		}
		path = p
	}
	return path, opts, nil
}

// fromStdin reads the manifest of -f - from stdin, once: it is named
// <stdin> in the context directory, so that its includes, modules and
// kiln.lock are the context's.
func (f *manifestFlags) fromStdin(opts manifest.Options) (string, manifest.Options, error) {
	dir := opts.Context
	if dir == "" {
		dir = "."
	}
	if f.stdinData == nil {
		data, err := io.ReadAll(f.stdin())
		if err != nil {
			return "", opts, fmt.Errorf("reading the manifest from stdin: %w", err)
		}
		f.stdinData = data
	}
	opts.Data = f.stdinData
	return filepath.Join(dir, manifest.StdinName), opts, nil
}

type buildFlags struct {
	manifestFlags
	tags          []string
	outputs       []string
	progress      string
	junit         string
	jobs          int
	keepGoing     bool
	noCache       bool
	noCacheFilter []string
	network       string
	userns        string
	secrets       []string
	push          bool
	memory        string
	pids          int64
	timeout       time.Duration
	debug         debugFlags
	explain       bool
	pull          bool
	locked        bool
	cacheTo       []string
	cacheFrom     []string
	kilnBinary    string
	quiet         bool
	platform      string                          // --platform P1,P2,…
	progressSet   bool                            // --progress was given
	observe       func(fsm.Observer) fsm.Observer // kiln dap: its inspector wraps the observer
}

func newBuildCommand(a *app) *cobra.Command {
	var f buildFlags
	c := &cobra.Command{
		Use:   "build [flags] [CONTEXT]",
		Short: "Build an image from a manifest",
		Long: `Build renders the manifest (a Jinja2 template of YAML), compiles it into a
graph of steps, runs what the cache does not already hold in kiln's own
containers, runs the test branches, and assembles the image.

Outputs: -t NAME[:TAG] tags it in the local store; --output type=oci,dest=DIR
(or DEST.tar) writes an OCI layout; --output type=docker,dest=FILE.tar a
docker load archive; -o type=local,dest=DIR the image's final filesystem
(no image), -o type=tar,dest=FILE that filesystem as one tar. -f - reads
the manifest or Dockerfile from stdin; CONTEXT is then the context.`,
		Example: `  kiln build -f examples/hello/app.yml -t hello
  kiln build --set version=1.2 --values prod.yml --junit report.xml -t app .`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.progressSet = cmd.Flags().Changed("progress")
			return a.build(cmd.Context(), f, args)
		},
	}
	f.add(c)
	f.modules = &appModules{a: a}
	fl := c.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "tag the image NAME[:TAG] in the local store (repeatable)")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "write the image: type=oci,dest=DIR|FILE.tar or type=docker,dest=FILE.tar; or its filesystem: type=local,dest=DIR or type=tar,dest=FILE (repeatable)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto, tty, plain or json (auto and tty: the live view on a terminal, unless NO_COLOR or CI is set)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing but the image's digest (on stdout)")
	fl.StringVar(&f.junit, "junit", "", "write the test branches' results as JUnit XML to FILE")
	fl.IntVar(&f.jobs, "jobs", 0, "nodes doing kiln's own work at once (default: the number of CPUs); up to 4× as many containers run at once")
	fl.BoolVar(&f.keepGoing, "keep-going", false, "after a failure, let independent branches finish")
	fl.BoolVar(&f.noCache, "no-cache", false, "run every step, ignoring the cache")
	fl.StringArrayVar(&f.noCacheFilter, "no-cache-filter", nil, "run this step (node key or step name) and those after it, ignoring the cache (repeatable)")
	fl.StringVar(&f.network, "network", "host", "network of run steps and tests: host or none")
	fl.StringVar(&f.userns, "userns", "", "user namespace of run steps and tests: host, or auto (each in one of its own, on a range of subordinate ids kiln allocates: root in a step is not root on the host); default: userns in the root's config.yml, else host")
	fl.BoolVar(&f.push, "push", false, "push every -t tag to its registry after the build")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit of every run step and test, e.g. 512m (a step's memory: wins)")
	fl.Int64Var(&f.pids, "pids-limit", 0, "most processes at once in every run step and test (default 2048; a step's pids: wins)")
	fl.DurationVar(&f.timeout, "timeout", 0, "end a step or test (its pull, copy, container and commit), or any other phase of the build (loading, an output, the push, the cache export), that runs this long, e.g. 10m (a step's timeout: wins)")
	f.debug.add(c)
	fl.BoolVar(&f.explain, "explain", false, "say why each step that ran missed the cache, against the closest earlier build")
	fl.BoolVar(&f.locked, "locked", false, "use exactly the digests of kiln.lock beside the manifest for base images and registry modules (kiln lock writes it)")
	fl.BoolVar(&f.pull, "pull", false, "resolve bases that name a registry there again, instead of using the store's copy")
	fl.StringArrayVar(&f.cacheTo, "cache-to", nil, "after the build, write its cache records and layers to registry://REGISTRY/REPO:TAG[,mode=min|max][,mounts=true] (repeatable)")
	fl.StringArrayVar(&f.cacheFrom, "cache-from", nil, "look steps the local cache lacks up in registry://REGISTRY/REPO:TAG (repeatable, first wins)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "a secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (repeatable)")
	fl.StringVar(&f.platform, "platform", "", "build for these platforms, os/arch[/variant] separated by commas (linux/amd64,linux/arm64): several give an image index of an image each; a foreign platform's run steps are emulated (kiln binfmt)")
	fl.StringVar(&f.kilnBinary, "kiln-binary", "", "the static kiln mounted at /.kiln/bin/kiln in build containers (default: this one)")
	_ = fl.MarkHidden("kiln-binary")
	return c
}

func (a *app) build(ctx context.Context, f buildFlags, args []string) (err error) {
	start := time.Now()
	mode := f.progress
	if f.quiet {
		mode = "quiet"
	}
	view, err := a.newBuildView(mode)
	if err != nil {
		return badInput(err)
	}
	var res *executor.Result
	var digest string
	defer func() { err = a.endBuild(ctx, f, view, res, start, digest, err) }()
	memory, err := memoryFlag(f.memory)
	if err != nil {
		return badInput(err)
	}
	network, err := engine.ParseNetwork(f.network)
	if err != nil {
		return badInput(err)
	}
	if err := a.setUserNS(f.userns); err != nil {
		return badInput(err)
	}
	if a.userns != nil {
		defer a.userns.Close()
	}
	outputs, err := parseOutputs(f.outputs)
	if err != nil {
		return badInput(err)
	}
	if err := a.checkBuildFlags(&f, f.progressSet, outputs); err != nil {
		return badInput(err)
	}
	cacheTo, cacheFrom, err := f.cacheSpecs()
	if err != nil {
		return badInput(err)
	}
	obs := view.obs
	if f.pull {
		a.pulls = &basePulls{}
	}
	if obs, err = f.debug.observer(a, obs, view.screen()); err != nil {
		return badInput(err)
	}
	if f.observe != nil {
		obs = f.observe(obs)
	}
	epoch, err := optionalEpoch()
	if err != nil {
		return badInput(err)
	}
	secrets, err := readSecrets(f.secrets)
	if err != nil {
		return badInput(err)
	}
	path, opts, err := f.options(args)
	if err != nil {
		return err
	}
	plats, err := f.platforms()
	if err != nil {
		return badInput(err)
	}
	s, err := a.store(ctx)
	if err != nil {
		return err
	}
	// A build ends the compressions of its layers that it started beside
	// the steps (executor.Options.Precompress) and did not wait for: of
	// layers no output needs (a stage outside the image), or of a build
	// that failed or was interrupted. They are cancelled, not finished:
	// nothing is left half written in tmp/, and a later export compresses
	// what it needs then (an export of this build waited for its layers).
	defer s.Close()
	lk, err := a.lockFor(&f, path)
	if err != nil {
		return badInput(err)
	}
	opts.ResolveBase = func(ctx context.Context, ref string) (*manifest.ImageConfig, error) {
		return a.baseConfig(ctx, s, pinned(lk, ref, platform.Host()))
	}
	if len(plats) == 1 {
		opts.Platform = plats[0]
		opts.ResolveBase = func(ctx context.Context, ref string) (*manifest.ImageConfig, error) {
			img, err := a.resolveBaseFor(ctx, s, pinned(lk, ref, plats[0]), plats[0])
			if err != nil || img == nil {
				return nil, err
			}
			return imageConfigOf(ref, img)
		}
	}
	pctx, stop := f.phase(ctx)
	b, err := manifest.Load(pctx, path, opts)
	err = f.phaseEnd(ctx, pctx, stop, "loading the manifest and its bases", err)
	if err != nil {
		return badInput(err)
	}
	if len(plats) == 0 {
		if plats, err = manifestPlatforms(b); err != nil {
			return badInput(err)
		}
	}
	if len(plats) > 1 {
		return a.buildIndex(ctx, &f, plats, path, opts, s, lk, view, start, outputs, &res, &digest, executor.Options{
			Store: s, Tmp: filepath.Join(a.root, "tmp"), Jobs: f.jobs, KeepGoing: f.keepGoing, NoCache: f.noCache, NoCacheFilter: f.noCacheFilter,
			Observer: obs, SourceDateEpoch: epoch, Network: network, Secrets: secrets,
			Limits: engine.Limits{Memory: memory, Pids: f.pids}, Timeout: f.timeout,
		})
	}
	if err := a.checkLock(ctx, b, path, lk); err != nil {
		return badInput(err)
	}
	for _, w := range b.Warnings {
		fmt.Fprintln(a.stderr, "kiln: note:", w)
	}
	g, err := dag.Compile(b)
	if err != nil {
		return badInput(err)
	}
	bctx, err := buildctx.Open(b.Context, buildctx.WithWarn(func(m string) { fmt.Fprintf(a.stderr, "kiln: warning: %s\n", m) }))
	if err != nil {
		return badInput(err)
	}
	if err := checkInputs(b, g, bctx); err != nil {
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
	pctx, stop = f.phase(ctx)
	remote, err := a.cacheSource(pctx, s, c, cacheFrom)
	err = f.phaseEnd(ctx, pctx, stop, "opening --cache-from", err)
	if err != nil {
		return err
	}
	tmp := filepath.Join(a.root, "tmp")
	kiln, err := kilnBinary(f.kilnBinary)
	if err != nil {
		return err
	}
	res, err = executor.Build(ctx, b, g, executor.Options{
		Store: s, Cache: c, Snapshotter: sn, Runtime: rt, Context: bctx, Tmp: tmp,
		Base:      func(ctx context.Context, ref string) (v1.Image, error) { return a.resolveBase(ctx, s, ref) },
		BaseFor:   singleBaseFor(a, s, plats),
		Jobs:      f.jobs,
		KeepGoing: f.keepGoing, NoCache: f.noCache, NoCacheFilter: f.noCacheFilter,
		Observer: obs, SourceDateEpoch: epoch, Network: network, Secrets: secrets,
		Limits: engine.Limits{Memory: memory, Pids: f.pids}, Timeout: f.timeout,
		Remote:      remote,
		KilnBinary:  kiln,
		MaxStack:    maxStack(),
		Precompress: exportsImage(outputs, f.push) || len(cacheTo) > 0,
	})
	a.recordBuild(ctx, f, path, b, g, res, view, start, err)
	if err != nil {
		if ctx.Err() != nil {
			return interruptedError{}
		}
		err = fmt.Errorf("build failed: %w", err)
		if executor.IsStepFailure(err) {
			return withCode(exitFailed, err)
		}
		return err // a *manifest.Error is wrong input; anything else kiln's trouble
	}
	// The store keeps the steps' layers as their tars: the image is
	// whole, and its digest known, without compressing anything. A build
	// that writes the image's blobs out (a push, an OCI or docker output)
	// keeps, names and prints the image it writes: its layers gzip, each
	// compressed once (what Precompress started beside the steps is
	// waited for here).
	img := res.Image
	if exportsImage(outputs, f.push) {
		pctx, stop := f.phase(ctx)
		img, err = s.Recompress(pctx, img, store.Gzip)
		if err := f.phaseEnd(ctx, pctx, stop, "compressing the layers", err); err != nil {
			return err
		}
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	for _, t := range f.tags {
		if _, err := s.Tag(ctx, img, t); err != nil {
			return err
		}
	}
	if len(f.tags) == 0 {
		// Untagged, as docker keeps a dangling image: the digest printed
		// below names it until kiln rmi removes it.
		if _, err := s.Keep(ctx, img); err != nil {
			return err
		}
	}
	for _, o := range outputs {
		pctx, stop := f.phase(ctx)
		var err error
		if !o.needsBlobs() {
			// Its files: the remote cache's layers are fetched now.
			err = s.FetchLayers(pctx, img)
		}
		if err == nil {
			err = o.write(pctx, img, f.tags)
		}
		if err := f.phaseEnd(ctx, pctx, stop, "writing "+o.dest, err); err != nil {
			return err
		}
	}
	if f.push {
		pctx, stop := f.phase(ctx)
		err := a.pushTags(pctx, img, f.tags)
		if err := f.phaseEnd(ctx, pctx, stop, "pushing", err); err != nil {
			return err
		}
	}
	pctx, stop = f.phase(ctx)
	err = a.exportCache(pctx, s, c, g, res, cacheTo)
	if err := f.phaseEnd(ctx, pctx, stop, "exporting the cache", err); err != nil {
		return err
	}
	ran, cached := countStates(g, res.States)
	if f.progress != "json" && !f.quiet && !view.summarises() {
		fmt.Fprintf(a.stderr, "built %s in %s: %s ran, %d cached\n", d, time.Since(start).Round(time.Millisecond), progress.Count(ran, "node"), cached)
	}
	digest = d.String()
	if view.json == nil {
		fmt.Fprintln(a.stdout, d)
	}
	return nil
}

// phase returns the context of a phase of the build outside its nodes
// (loading the manifest with its bases, an output, the push, the cache
// export): bounded by --timeout, as each node is.
func (f *buildFlags) phase(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, f.timeout, &executor.TimeoutError{Limit: f.timeout})
}

// phaseEnd ends a phase that returned err: one ended by its timeout says
// so, one ended by a signal is an interrupted build.
func (f *buildFlags) phaseEnd(ctx, pctx context.Context, stop context.CancelFunc, what string, err error) error {
	defer stop()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return interruptedError{}
	case pctx.Err() != nil:
		return fmt.Errorf("%s: %w: %w", what, context.Cause(pctx), err)
	}
	return err
}

// endBuild ends kiln build on every outcome, err: it writes the --junit
// report and, with --progress json, the result object, the last one. It
// returns err, or the error of writing the report.
func (a *app) endBuild(ctx context.Context, f buildFlags, view *buildView, res *executor.Result, start time.Time, digest string, err error) error {
	if f.junit != "" {
		code := exitStatus(ctx, err, true)
		if jerr := writeJUnit(f.junit, junitSuite(res, code, buildMessage(code, err), start)); jerr != nil && err == nil {
			err = jerr
		}
	}
	if view.json != nil {
		code := exitStatus(ctx, err, true)
		r := progress.Result{ExitCode: code}
		if err == nil {
			r.Digest = digest
		} else {
			r.Err = errors.New(buildMessage(code, err))
		}
		view.json.Result(r)
	}
	return err
}

// buildMessage is what a build that ended with status code after err
// says of itself.
func buildMessage(code int, err error) string {
	switch {
	case err == nil:
		return ""
	case code == exitInterrupted:
		return interruptedError{}.Error()
	}
	return err.Error()
}

// optionalEpoch reads SOURCE_DATE_EPOCH, if set.
func optionalEpoch() (*time.Time, error) {
	if os.Getenv("SOURCE_DATE_EPOCH") == "" {
		return nil, nil
	}
	t, err := sourceDateEpoch()
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// resolveBase finds a base image: scratch, oci-layout:, docker-archive:,
// the local store (by name, as store.FullName normalises it, or digest),
// else the registry (with the global registry flags and registries.conf:
// a short name is Docker Hub's), pulling it into the store so that its
// layers are unpacked once and reused. kiln build --pull (a.pulls) pulls
// every name again, as docker build --pull does.
func (a *app) resolveBase(ctx context.Context, s *store.Store, ref string) (v1.Image, error) {
	if ref == "scratch" {
		return nil, nil
	}
	if store.IsTransport(ref) || isDigest(ref) {
		return s.Resolve(ctx, ref)
	}
	if a.pulls != nil {
		return a.pulls.pull(ctx, a, s, ref) // kiln build --pull
	}
	img, err := s.Resolve(ctx, ref)
	if !errors.Is(err, store.ErrNotFound) {
		return img, err
	}
	img, pullErr := a.pullInto(ctx, s, ref)
	if pullErr != nil {
		full, _ := store.FullName(ref)
		return nil, fmt.Errorf("%w, and pulling %s failed (%w): import it (kiln import DIR -t %s) or pull it (kiln pull %s)", err, full, pullErr, ref, full)
	}
	return img, nil
}

// isDigest reports whether ref names an image of the store by its digest
// (sha256:…, or 12 to 64 hex digits as docker's short ids), which no
// registry is asked for.
func isDigest(ref string) bool {
	if strings.HasPrefix(ref, "sha256:") {
		return true
	}
	hex := strings.Trim(ref, "0123456789abcdef") == ""
	return hex && len(ref) >= 12 && len(ref) <= 64
}

// baseConfig is what a Dockerfile needs of a base image's config: its
// env, shell and ONBUILD triggers.
func (a *app) baseConfig(ctx context.Context, s *store.Store, ref string) (*manifest.ImageConfig, error) {
	img, err := a.resolveBase(ctx, s, ref)
	if err != nil || img == nil {
		return nil, err
	}
	return imageConfigOf(ref, img)
}

// readSecrets reads the --secret values: id=ID,src=FILE (or source=),
// id=ID,env=VAR, or id=ID alone for the variable ID.
func readSecrets(specs []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, spec := range specs {
		var id, src, env string
		for _, kv := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "env":
				env = v
			case "type":
				if v != "file" && v != "env" {
					return nil, fmt.Errorf("--secret %q: type must be file or env", spec)
				}
			default:
				return nil, fmt.Errorf("--secret %q: unknown key %q (use id=ID,src=FILE or id=ID,env=VAR)", spec, k)
			}
		}
		if id == "" {
			return nil, fmt.Errorf("--secret %q: needs id=ID", spec)
		}
		switch {
		case src != "" && env != "":
			return nil, fmt.Errorf("--secret %q: give src= or env=, not both", spec)
		case src != "":
			data, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("--secret %s: %w", id, err)
			}
			out[id] = data
		default:
			if env == "" {
				env = id
			}
			v, ok := os.LookupEnv(env)
			if !ok {
				return nil, fmt.Errorf("--secret %s: the environment variable %s is not set", id, env)
			}
			out[id] = []byte(v)
		}
	}
	return out, nil
}

// junitSuite is the JUnit report of a build that ended with status code
// and message msg (res is nil when it ended before running): an error
// case per step that failed, a case per test (skipped when it never
// ended, and why), and, when the build failed otherwise, an error case
// saying so: the report is never green when the build is not.
func junitSuite(res *executor.Result, code int, msg string, start time.Time) junit.Suite {
	s := junit.Suite{Name: "kiln", Timestamp: start}
	s.Hostname, _ = os.Hostname()
	red := false
	if res != nil {
		for _, f := range res.Failed {
			s.Cases = append(s.Cases, junit.Case{
				Name: f.Name, Classname: f.Stage, Time: f.Duration, File: f.Pos.File, Line: f.Pos.Line,
				Error: firstLine(f.Err.Error()), Text: f.Output, Output: f.Stdout, Stderr: f.Stderr,
			})
			red = true
		}
		for _, t := range res.Tests {
			c := junit.Case{Name: t.Name, Classname: t.Stage, Time: t.Duration, File: t.Pos.File, Line: t.Pos.Line,
				Output: t.Stdout, Stderr: t.Stderr, Cached: t.Cached, Skipped: t.Skipped}
			if !t.Passed && t.Skipped == "" {
				c.Failure, c.Text = fmt.Sprintf("exit status %d", t.Code), t.Output
				if t.Err != nil {
					c.Failure = firstLine(t.Err.Error())
				}
				red = true
			}
			s.Cases = append(s.Cases, c)
		}
	}
	if code != 0 && !red {
		s.Cases = append(s.Cases, junit.Case{Name: "kiln build", Classname: "kiln", Error: firstLine(msg), Text: msg,
			Time: time.Since(start)})
	}
	return s
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// writeJUnit writes s to path.
func writeJUnit(path string, s junit.Suite) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	if err := junit.Write(f, s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// output is one --output.
type output struct {
	typ, dest string
	platform  string // of a multi-platform build, the image that type=docker, local or tar writes
}

func parseOutputs(specs []string) ([]output, error) {
	var outs []output
	for _, s := range specs {
		var o output
		for _, kv := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "type":
				o.typ = v
			case "dest":
				o.dest = v
			case "platform":
				o.platform = v
			default:
				return nil, fmt.Errorf("--output %q: unknown key %q (use type=oci|docker|local|tar,dest=PATH)", s, k)
			}
		}
		switch o.typ {
		case "oci", "docker", "local", "tar":
		default:
			return nil, fmt.Errorf("--output %q: type must be oci, docker, local or tar", s)
		}
		if o.dest == "" {
			return nil, fmt.Errorf("--output %q: needs dest=PATH", s)
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// layoutTag is the tag an OCI layout output names the image by: that of
// the first -t, else latest.
func layoutTag(tags []string) string {
	if len(tags) > 0 {
		if i := strings.LastIndex(tags[0], ":"); i > strings.LastIndex(tags[0], "/") {
			return tags[0][i+1:]
		}
	}
	return "latest"
}

// countStates counts the nodes of g that ran and those the cache held,
// by their states, as the build record does (history.Tally).
func countStates(g *dag.Graph, states map[string]fsm.State) (ran, cached int) {
	for k, st := range states {
		kind := ""
		if n := g.Node(k); n != nil {
			kind = string(n.Kind)
		}
		switch history.Tally(kind, string(st)) {
		case history.Ran:
			ran++
		case history.WasCached:
			cached++
		}
	}
	return ran, cached
}

// needsBlobs reports whether o writes the image's layer blobs (which are
// then compressed), not only its files.
func (o output) needsBlobs() bool { return o.typ == "oci" || o.typ == "docker" }

// exportsImage reports whether a build writes its image's layer blobs
// out: pushes it, or has an output of blobs.
func exportsImage(outputs []output, push bool) bool {
	return push || slices.ContainsFunc(outputs, output.needsBlobs)
}

func (o output) write(ctx context.Context, img v1.Image, tags []string) error {
	tag := layoutTag(tags)
	switch {
	case o.typ == "local" || o.typ == "tar":
		return writeFilesystem(ctx, img, o.typ, o.dest)
	case o.typ == "docker":
		return store.Export(ctx, img, "docker-archive:"+o.dest, tags...)
	case strings.HasSuffix(o.dest, ".tar"):
		return toOCIArchive(ctx, o.dest, func(dir string) error { return store.Export(ctx, img, "oci-layout:"+dir+":"+tag) })
	default:
		return store.Export(ctx, img, "oci-layout:"+o.dest+":"+tag)
	}
}

// toOCIArchive writes the OCI archive dest (an OCI layout as a tar, what
// skopeo calls oci-archive:): write makes the layout in a temporary
// directory beside dest.
func toOCIArchive(ctx context.Context, dest string, write func(dir string) error) error {
	dir, err := os.MkdirTemp(filepath.Dir(dest), ".oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := write(dir); err != nil {
		return err
	}
	return tarDir(ctx, dir, dest)
}

// tarDir writes the tree under dir as a tar file at dest, atomically.
func tarDir(ctx context.Context, dir, dest string) error {
	tmp := dest + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := layer.WriteDir(ctx, f, dir); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dest)
}

// pushTags pushes img to the registry of each tag.
func (a *app) pushTags(ctx context.Context, img v1.Image, tags []string) error {
	return a.pushEach(ctx, tags, func(rc *registry.Client, ref name.Reference) error { return rc.Push(ctx, img, ref) })
}

// pushEach pushes, with push, to the registry of each tag.
func (a *app) pushEach(ctx context.Context, tags []string, push func(*registry.Client, name.Reference) error) error {
	rc, err := a.registry()
	if err != nil {
		return err
	}
	for _, t := range tags {
		ref, err := rc.Reference(t)
		if err != nil {
			return err
		}
		if err := push(rc, ref); err != nil {
			return fmt.Errorf("pushing %s: %w", t, err)
		}
		fmt.Fprintf(a.stderr, "pushed %s\n", t)
	}
	return nil
}
