package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor/history"
)

// drawBuild is kiln graph with --after-build or --format svg: the graph,
// coloured by how the last build of the manifest went when asked, as DOT
// or rendered to SVG by Graphviz.
func (a *app) drawBuild(ctx context.Context, f manifestFlags, args []string, format string, afterBuild bool, plats string) error {
	if format != "dot" && format != "svg" {
		return fmt.Errorf("--after-build draws --format dot or svg, not %q", format)
	}
	var rec *history.Record
	if afterBuild {
		path, recs, err := a.recordsOf(ctx, f, args)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("%w of %s: --after-build draws the last build (kiln build writes one)", history.ErrNotFound, path)
		}
		rec = recs[len(recs)-1]
		if len(f.values) == 0 && len(f.set) == 0 && len(f.buildArgs) == 0 && f.target == "" {
			// Draw the graph the build had.
			f.values, f.set, f.buildArgs, f.target = rec.Values, rec.Set, rec.BuildArgs, rec.Target
		}
		if plats == "" {
			plats = strings.Join(rec.Platforms, ",")
		}
	}
	g, err := f.loadGraph(ctx, args, plats)
	if err != nil {
		return err
	}
	var out []byte
	if rec != nil {
		out, err = g.DOTOutcomes(outcomes(rec))
	} else {
		out, err = g.DOT()
	}
	if err != nil {
		return err
	}
	if format == "svg" {
		if out, err = renderSVG(ctx, out); err != nil {
			return err
		}
	}
	_, err = a.stdout.Write(out)
	return err
}

// outcomes maps a record's nodes to how they are drawn.
func outcomes(rec *history.Record) map[string]dag.NodeOutcome {
	m := map[string]dag.NodeOutcome{}
	for _, n := range rec.Nodes {
		o := dag.OutcomeNotRun
		switch n.State {
		case "cached":
			o = dag.OutcomeCached
		case "done", "passed", "stopped": // stopped: a service that ran
			o = dag.OutcomeRan
		case "failed":
			o = dag.OutcomeFailed
		}
		m[n.Key] = dag.NodeOutcome{Outcome: o, Duration: time.Duration(n.Duration)}
	}
	return m
}

// renderSVG renders DOT to SVG with Graphviz's dot.
func renderSVG(ctx context.Context, dot []byte) ([]byte, error) {
	bin, err := exec.LookPath("dot")
	if err != nil {
		return nil, errors.New("--format svg needs Graphviz's dot command, which is not installed (apt-get install graphviz), or use --format dot")
	}
	cmd := exec.CommandContext(ctx, bin, "-Tsvg")
	cmd.Stdin = bytes.NewReader(dot)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("rendering svg with %s: %v: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
