package manifest

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/internal/regfile"
)

// This file finds the values given on the command line that nothing
// reads: a --set or --values name that no template mentions is most
// likely a typo, and a --build-arg has no ARG to set in a YAML manifest.

// unreadWarnings returns a warning for each top-level name of opts.Set
// and opts.Values that neither the manifest's vars: nor any template
// (the manifest, its includes, its template: files) mentions, naming the
// closest name they do mention; and one for each --build-arg when the
// manifest has no Dockerfile stage. names are the names the manifest's
// templates read.
// A build whose steps may read the values at run time (a command that
// mentions /.kiln, where kiln's helper is; a toolbox:) reads any name:
// none is warned about.
func unreadWarnings(b *Build, f first, opts Options, names []string, dockerfiles bool) []string {
	var out []string
	if !dockerfiles {
		for _, a := range opts.BuildArgs {
			k, _, _ := strings.Cut(a, "=")
			out = append(out, fmt.Sprintf("--build-arg %s: a YAML manifest has no ARG to set; its template values are --set %s=VALUE", k, k))
		}
	}
	if readsValuesAtRunTime(b) {
		return out
	}
	known := map[string]bool{}
	if f.vars != nil {
		for k := range f.vars.All() {
			if s, ok := k.(string); ok {
				known[s] = true
			}
		}
	}
	for _, n := range append(names, templateNames(b)...) {
		known[n] = true
	}
	names = names[:0:0]
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	warn := func(flag, name string) {
		if known[name] {
			return
		}
		known[name] = true // once
		msg := fmt.Sprintf("%s %s: no template reads the value %q", flag, name, name)
		if c := closest(name, names); c != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", c)
		}
		out = append(out, msg)
	}
	for _, s := range opts.Set {
		k, _, _ := strings.Cut(s, "=")
		k, _, _ = strings.Cut(k, ".")
		warn("--set", k)
	}
	for _, file := range opts.Values {
		v, err := readValues(file)
		if err != nil {
			continue // buildValues said so already
		}
		ks := make([]string, 0, v.Len())
		for k := range v.All() {
			if s, ok := k.(string); ok {
				ks = append(ks, s)
			}
		}
		sort.Strings(ks)
		for _, k := range ks {
			warn("--values "+file+":", k)
		}
	}
	return out
}

// readsValuesAtRunTime reports whether a step of b may read the template
// values when it runs (/.kiln/bin/kiln render, a toolbox script).
func readsValuesAtRunTime(b *Build) bool {
	for _, s := range b.Stages {
		if len(s.Toolbox) > 0 {
			return true
		}
		for _, st := range s.Steps {
			if st.Run != nil && mentionsKiln(*st.Run) {
				return true
			}
		}
		for _, t := range s.Tests {
			if mentionsKiln(t.Run) {
				return true
			}
		}
	}
	return false
}

// mentionsKiln reports whether c names /.kiln, where the helpers that
// read the values at run time are.
func mentionsKiln(c Command) bool {
	return strings.Contains(c.Shell, "/.kiln") || slices.ContainsFunc(c.Exec, func(a string) bool { return strings.Contains(a, "/.kiln") })
}

// templateNames returns the names the template: files of b's own steps
// read (a module's templates see its parameters only), parsed as their
// steps will; a file that cannot be is the build's error to report, not
// this one's.
func templateNames(b *Build) []string {
	var names []string
	for _, s := range b.Stages {
		for _, st := range s.Steps {
			t := st.Template
			if t == nil || t.Dir != "" || t.Values != nil {
				continue
			}
			fsys := regfile.FS(b.Context)
			name := path.Clean(filepath.ToSlash(t.Src))
			data, err := fs.ReadFile(fsys, name)
			if err != nil {
				continue
			}
			r := newRenderer(fsys, b.Context, b.Values)
			_, _, _ = r.render(filepath.Join(b.Context, name), 0, string(data), false)
			names = append(names, r.env.Names()...)
		}
	}
	return names
}

// closest returns the name of names nearest to s by edit distance, if
// it is near enough to be a typo of it (at most a third of its length,
// and at least 1, edits away), else "".
func closest(s string, names []string) string {
	best, bestD := "", max(1, len(s)/3)+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance of a and b (optimal
// string alignment): insertions, deletions, substitutions and swaps of
// two neighbours each cost 1.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
