package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/debugger"
	"github.com/kiln-build/kiln/executor/history"
	"github.com/kiln-build/kiln/executor/progress"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/manifest"
	"golang.org/x/term"
)

// buildView is how kiln build shows a build: plain lines, JSON, or the
// live terminal view; it also times the nodes for the build record.
type buildView struct {
	obs   fsm.Observer
	tty   *progress.TTY  // the live view, or nil
	json  *progress.JSON // --progress json, or nil
	timer *history.Timer
}

// newBuildView chooses the view for --progress mode: tty is the live view
// when stderr is a terminal and neither NO_COLOR nor CI is set, and plain
// otherwise; auto is the same.
func (a *app) newBuildView(mode string) (*buildView, error) {
	v := &buildView{timer: history.NewTimer()}
	var obs fsm.Observer
	switch mode {
	case "auto", "tty":
		if f, ok := a.stderr.(*os.File); ok && liveTerminal(f) && !envSet("NO_COLOR") && !envSet("CI") {
			t, err := progress.NewTTY(f)
			if err != nil {
				return nil, err
			}
			v.tty, obs = t, t
			break
		}
		obs = progress.NewPlain(a.stderr)
	case "plain":
		obs = progress.NewPlain(a.stderr)
	case "json":
		v.json = progress.NewJSON(a.stdout)
		obs = v.json
	case "quiet": // kiln build -q
		obs = fsm.Observers{}
	default:
		return nil, fmt.Errorf("--progress %q: use auto, tty, plain or json", mode)
	}
	v.obs = fsm.Observers{obs, v.timer}
	return v, nil
}

// liveTerminal reports whether f is a terminal with a size to draw in
// (a pseudo-terminal nobody sized reports 0 rows, where mpb draws
// nothing).
func liveTerminal(f *os.File) bool {
	if !term.IsTerminal(int(f.Fd())) {
		return false
	}
	w, h, err := term.GetSize(int(f.Fd()))
	return err == nil && w > 0 && h > 0
}

// envSet reports whether the variable name is set to something other
// than "", "0" or "false" (CI=false is not CI).
func envSet(name string) bool {
	v := os.Getenv(name)
	return v != "" && v != "0" && v != "false"
}

// screen is the live view, for the debugger to hold while it has the
// terminal; nil when the view is not live.
func (v *buildView) screen() debugger.Screen {
	if v.tty == nil {
		return nil
	}
	return v.tty
}

// summarises reports whether the view prints the build's summary itself.
func (v *buildView) summarises() bool { return v.tty != nil }

// recordBuild ends a build that ran (err is how the executor or the
// image ended): it closes the live view with the summary, writes the
// build record and, with --explain, says why steps missed the cache.
// Failing to write the record is only a note.
func (a *app) recordBuild(ctx context.Context, f buildFlags, path string, b *manifest.Build, g *dag.Graph,
	res *executor.Result, v *buildView, start time.Time, err error) {
	rec := newRecord(path, b, g, f.manifestFlags, res, v.timer)
	if err == nil {
		if d, derr := res.Image.Digest(); derr == nil {
			rec.Digest = d.String()
		}
	}
	a.writeRecord(ctx, f, rec, v, start, err)
}

// writeRecord ends a build that ran, whose record is rec, as recordBuild
// says.
func (a *app) writeRecord(ctx context.Context, f buildFlags, rec *history.Record, v *buildView, start time.Time, err error) {
	ctx = context.WithoutCancel(ctx)
	rec.Duration = history.Duration(time.Since(start))
	switch {
	case err == nil:
		rec.Status = history.Succeeded
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		rec.Status, rec.Error = history.Cancelled, err.Error()
	default:
		rec.Status, rec.Error = history.Failed, err.Error()
	}
	if v.tty != nil {
		ran, cached := rec.Counts()
		_ = v.tty.Close(progress.Summary{Ran: ran, Cached: cached, Duration: time.Duration(rec.Duration), Digest: rec.Digest, Err: err})
	}
	hs, herr := a.history()
	if herr == nil && f.explain {
		herr = explainAgainst(ctx, a.stderr, hs, rec, func(n *history.Node) bool { return history.Missed(n.State) })
	}
	if herr == nil {
		herr = hs.Write(ctx, rec)
	}
	if herr != nil {
		fmt.Fprintf(a.stderr, "kiln: note: the build record: %v\n", herr)
	}
}

// history opens the build records under --root.
func (a *app) history() (*history.Store, error) {
	root, err := filepath.Abs(a.root)
	if err != nil {
		return nil, err
	}
	return history.Open(filepath.Join(root, "history"))
}

// explanations returns the closest record of cur's manifest earlier
// than cur (nil when there is none) and why the nodes of cur for which
// missed is true, bases aside, missed the cache against it.
func explanations(ctx context.Context, hs *history.Store, cur *history.Record, missed func(*history.Node) bool) (*history.Record, []history.Explanation, error) {
	all, err := hs.Of(ctx, cur.Manifest)
	if err != nil {
		return nil, nil, err
	}
	var earlier []*history.Record
	for _, r := range all {
		if cur.ID == "" || r.ID < cur.ID {
			earlier = append(earlier, r)
		}
	}
	prev := history.Closest(earlier, cur)
	return prev, history.Explain(prev, cur, func(n *history.Node) bool { return n.Kind != string(dag.KindBase) && missed(n) }), nil
}

// explainAgainst prints why the nodes of cur for which missed is true
// missed the cache, against the closest earlier record of its manifest.
func explainAgainst(ctx context.Context, w io.Writer, hs *history.Store, cur *history.Record, missed func(*history.Node) bool) error {
	prev, es, err := explanations(ctx, hs, cur, missed)
	if err != nil {
		return err
	}
	switch {
	case len(es) == 0:
		_, err = fmt.Fprintln(w, "explain: every step is a cache hit")
		return err
	case prev == nil:
		fmt.Fprintf(w, "explain: no earlier build of %s to compare with; these steps are not cached:\n", cur.Manifest)
	default:
		fmt.Fprintf(w, "explain: why steps missed the cache, against build %s (%s%s):\n", prev.ID, prev.Time.Local().Format(time.DateTime), describeValues(prev))
	}
	return history.Write(w, es)
}

// describeValues says which values a record was built with.
func describeValues(r *history.Record) string {
	var s string
	for _, v := range r.Values {
		s += ", --values " + v
	}
	for _, v := range r.Set {
		s += ", --set " + v
	}
	for _, v := range r.BuildArgs {
		s += ", --build-arg " + v
	}
	return s
}

// newRecord makes the record of a build from what the executor returned.
func newRecord(path string, b *manifest.Build, g *dag.Graph, f manifestFlags, res *executor.Result, timer *history.Timer) *history.Record {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	rec := &history.Record{
		Time: time.Now(), Manifest: abs, Context: b.Context, Target: f.target,
		Values: f.values, Set: f.set, BuildArgs: f.buildArgs, Nodes: []history.Node{},
	}
	if res == nil {
		return rec
	}
	for _, n := range g.Nodes() {
		st, ok := res.States[n.Key]
		if !ok {
			continue // not needed for the target
		}
		hn := history.Node{Key: n.Key, Name: n.Name, Kind: string(n.Kind), State: string(st)}
		if n.Parent != nil {
			hn.Parent = n.Parent.Key
		}
		if timer != nil {
			hn.Duration = history.Duration(timer.Duration(n.Key))
		}
		if ni, ok := res.Inputs[n.Key]; ok {
			hn.CacheKey = ni.Key.String()
			hn.Inputs = recordInputs(ni)
			if n.Kind == dag.KindBase {
				rec.Bases = append(rec.Bases, history.Base{Stage: n.Stage.Name, Ref: ni.BaseRef, Digest: ni.BaseDigest})
			}
		}
		rec.Nodes = append(rec.Nodes, hn)
	}
	return rec
}

// recordInputs is what a node's key covers, as a record keeps it.
func recordInputs(ni executor.NodeInputs) *history.Inputs {
	in := ni.Input
	hi := &history.Inputs{
		Kind: in.Kind, Args: in.Args, Env: in.Env, Workdir: in.Workdir, User: in.User,
		Shell: in.Shell, Network: in.Network, Epoch: in.Epoch,
		BaseRef: ni.BaseRef, BaseDigest: ni.BaseDigest,
	}
	if in.Parent != (cache.Key{}) {
		hi.Parent = in.Parent.String()
	}
	for _, d := range in.Inputs {
		hi.Digests = append(hi.Digests, d.String())
	}
	for _, s := range ni.Sources {
		hi.Sources = append(hi.Sources, history.Source{Source: s.Source, Digest: s.Digest.String(), Files: s.Files})
	}
	return hi
}
