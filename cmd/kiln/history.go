package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/executor/history"
)

func newHistoryCommand(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "history [flags]",
		Short: "List past builds: manifest, values, duration, steps run and cached, digest",
		Long: `History lists the builds recorded under --root/history, newest first. Every
kiln build records its manifest, values, each node's state, duration and
cache key inputs; the last 50 are kept. kiln graph --after-build and kiln
explain read them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.listHistory(cmd.Context(), format)
		},
	}
	c.Flags().StringVar(&format, "format", "table", "table or json")
	return c
}

// historyEntry is one build as kiln history --format json lists it.
type historyEntry struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Manifest  string    `json:"manifest"`
	Values    []string  `json:"values,omitempty"`
	Set       []string  `json:"set,omitempty"`
	BuildArgs []string  `json:"build_args,omitempty"`
	Target    string    `json:"target,omitempty"`
	Status    string    `json:"status"`
	Duration  string    `json:"duration"`
	Ran       int       `json:"ran"`
	Cached    int       `json:"cached"`
	Digest    string    `json:"digest,omitempty"`
	Platforms []string  `json:"platforms,omitempty"`
}

func (a *app) listHistory(ctx context.Context, format string) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("--format %q: use table or json", format)
	}
	hs, err := a.history()
	if err != nil {
		return err
	}
	recs, err := hs.List(ctx)
	if err != nil {
		return err
	}
	entries := make([]historyEntry, 0, len(recs))
	for _, r := range slices.Backward(recs) { // newest first, as docker history lists
		ran, cached := r.Counts()
		entries = append(entries, historyEntry{
			ID: r.ID, Time: r.Time, Manifest: r.Manifest, Values: r.Values, Set: r.Set, BuildArgs: r.BuildArgs,
			Target: r.Target, Status: r.Status, Duration: r.Duration.String(), Ran: ran, Cached: cached, Digest: r.Digest,
			Platforms: r.Platforms,
		})
	}
	if format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMANIFEST\tVALUES\tSTATUS\tDURATION\tRAN\tCACHED\tDIGEST")
	for _, e := range entries {
		values := strings.TrimPrefix(describeValues(&history.Record{Values: e.Values, Set: e.Set, BuildArgs: e.BuildArgs}), ", ")
		if values == "" {
			values = "-"
		}
		digest := e.Digest
		if digest == "" {
			digest = "-"
		}
		manifest := shortPath(e.Manifest)
		if len(e.Platforms) > 0 {
			manifest += " [" + strings.Join(e.Platforms, ",") + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", e.ID, manifest, values, e.Status, e.Duration, e.Ran, e.Cached, digest)
	}
	return tw.Flush()
}

// shortPath shows a manifest path relative to the working directory
// when that is shorter.
func shortPath(p string) string {
	if wd, err := filepath.Abs("."); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && len(rel) < len(p) {
			return rel
		}
	}
	return p
}

// absPath is filepath.Abs with the error said in kiln's words.
func absPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("the manifest path %s: %w", p, err)
	}
	return abs, nil
}
