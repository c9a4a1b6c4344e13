package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/executor/history"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
)

type explainFlags struct {
	manifestFlags
	last    bool
	network string
	format  string
}

func newExplainCommand(a *app) *cobra.Command {
	var f explainFlags
	c := &cobra.Command{
		Use:   "explain [flags] [CONTEXT]",
		Short: "Say why steps would miss the cache, against the closest earlier build",
		Long: `Explain computes the cache key of every step of the manifest, as kiln build
would, without running anything; for each step whose key is not in the cache
it says which input of the key changed against the closest earlier build of
the same manifest (the command text, an env variable, a file by its path,
the parent step, the base image digest). With --last it explains the last
build instead, against the closest build before it.`,
		Example: `  kiln explain -f app.yml --set version=2
  kiln explain --last -f app.yml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.explain(cmd.Context(), f, args)
		},
	}
	f.add(c)
	f.modules = &appModules{a: a}
	c.Flags().BoolVar(&f.last, "last", false, "explain the last recorded build of the manifest")
	c.Flags().StringVar(&f.network, "network", "host", "the network the build would use: host or none (it is part of the keys)")
	c.Flags().StringVar(&f.format, "format", "text", "text or json")
	return c
}

// wouldRun is the state a dry run gives a step whose key is not cached.
const wouldRun = "would run"

func (a *app) explain(ctx context.Context, f explainFlags, args []string) error {
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("--format %q: use text or json", f.format)
	}
	hs, err := a.history()
	if err != nil {
		return err
	}
	var cur *history.Record
	missed := func(n *history.Node) bool { return history.Missed(n.State) }
	if f.last {
		path, recs, err := a.recordsOf(ctx, f.manifestFlags, args)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("%w of %s (kiln build writes one)", history.ErrNotFound, path)
		}
		cur = recs[len(recs)-1]
	} else {
		if cur, err = a.dryRun(ctx, f, args); err != nil {
			return err
		}
		missed = func(n *history.Node) bool { return n.State == wouldRun }
	}
	if f.format == "json" {
		_, es, err := explanations(ctx, hs, cur, missed)
		if err != nil {
			return err
		}
		if es == nil {
			es = []history.Explanation{}
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(es)
	}
	return explainAgainst(ctx, a.stdout, hs, cur, missed)
}

// compiled is a loaded manifest, its graph, and the store its bases
// resolve in.
type compiled struct {
	path  string
	store *store.Store
	build *manifest.Build
	graph *dag.Graph
}

// compile loads the manifest the flags name, resolving its bases in the
// store, and compiles its graph.
func (a *app) compile(ctx context.Context, f manifestFlags, args []string) (compiled, error) {
	path, opts, err := f.options(args)
	if err != nil {
		return compiled{}, err
	}
	s, err := a.store(ctx)
	if err != nil {
		return compiled{}, err
	}
	opts.ResolveBase = func(ctx context.Context, ref string) (*manifest.ImageConfig, error) { return a.baseConfig(ctx, s, ref) }
	b, err := manifest.Load(ctx, path, opts)
	if err != nil {
		return compiled{}, err
	}
	g, err := dag.Compile(b)
	if err != nil {
		return compiled{}, err
	}
	return compiled{path, s, b, g}, nil
}

// dryRun computes the keys of the build the flags describe, and looks
// them up, without running anything.
func (a *app) dryRun(ctx context.Context, f explainFlags, args []string) (*history.Record, error) {
	network, err := engine.ParseNetwork(f.network)
	if err != nil {
		return nil, err
	}
	epoch, err := optionalEpoch()
	if err != nil {
		return nil, err
	}
	cm, err := a.compile(ctx, f.manifestFlags, args)
	if err != nil {
		return nil, err
	}
	path, s, b, g := cm.path, cm.store, cm.build, cm.graph
	bctx, err := buildctx.Open(b.Context)
	if err != nil {
		return nil, err
	}
	c, err := cache.Open(ctx, s)
	if err != nil {
		return nil, err
	}
	res, err := executor.Build(ctx, b, g, executor.Options{
		Store: s, Cache: c, Context: bctx, Tmp: filepath.Join(a.root, "tmp"),
		Base:     func(ctx context.Context, ref string) (v1.Image, error) { return a.resolveBase(ctx, s, ref) },
		DryRun:   true,
		Network:  network,
		Observer: nil, SourceDateEpoch: epoch,
	})
	if err != nil {
		return nil, err
	}
	rec := newRecord(path, b, g, f.manifestFlags, res, nil)
	for i := range rec.Nodes {
		n := &rec.Nodes[i]
		if ni, ok := res.Inputs[n.Key]; ok && ni.Looked && !ni.Hit {
			n.State = wouldRun
		}
	}
	return rec, nil
}
