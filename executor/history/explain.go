package history

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/executor/buildctx"
)

// Reason is one input of a node's cache key that differs from the
// closest previous build.
type Reason struct {
	// Input names what changed: "command", "args", "env", "workdir",
	// "user", "shell", "network", "epoch", "file", "sources", "template",
	// "stage", "base", "parent", "kind", "new" (no such node before) or
	// "same-key" (the key did not change: the cache lost it, or a failed
	// or --no-cache build never kept it).
	Input string `json:"input"`
	// Path is the file (context-relative), the env variable, the base
	// reference or the parent node it is about.
	Path string `json:"path,omitempty"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
	// Because, for a parent that changed although it never misses the
	// cache (a base, an env step), is why it changed.
	Because []Reason `json:"because,omitempty"`
}

// Explanation says why one node was not a cache hit.
type Explanation struct {
	Node    string   `json:"node"`
	Name    string   `json:"name"`
	Against string   `json:"against"` // the ID of the record compared with
	Reasons []Reason `json:"reasons"`
}

// Closest returns the record of candidates most like cur: the most nodes
// with the same cache key, then the most nodes whose own inputs match,
// then the newest. Records with cur's ID are skipped. It returns nil when
// there is no candidate.
func Closest(candidates []*Record, cur *Record) *Record {
	var best *Record
	var bestKeys, bestInputs int
	for _, c := range candidates {
		if c.ID == cur.ID && cur.ID != "" {
			continue
		}
		keys, inputs := 0, 0
		for _, n := range cur.Nodes {
			p := c.Node(n.Key)
			if p == nil {
				continue
			}
			if n.CacheKey != "" && p.CacheKey == n.CacheKey {
				keys++
			}
			if n.Inputs != nil && p.Inputs != nil && len(ownChanges(n.Inputs, p.Inputs)) == 0 {
				inputs++
			}
		}
		if best == nil || keys > bestKeys || keys == bestKeys && inputs > bestInputs ||
			keys == bestKeys && inputs == bestInputs && c.ID > best.ID {
			best, bestKeys, bestInputs = c, keys, inputs
		}
	}
	return best
}

// Missed reports whether a node in state was not a cache hit: it ran
// (done, passed) or failed.
func Missed(state string) bool {
	switch state {
	case "done", "passed", "failed", "running", "creating", "committing":
		return true
	}
	return false
}

// Explain says, for each node of cur for which missed is true, why its
// key is not prev's: which of its inputs changed. With a nil prev every
// such node is new.
func Explain(prev, cur *Record, missed func(n *Node) bool) []Explanation {
	var out []Explanation
	for i := range cur.Nodes {
		n := &cur.Nodes[i]
		if !missed(n) {
			continue
		}
		e := Explanation{Node: n.Key, Name: n.Name}
		if prev == nil {
			e.Reasons = []Reason{{Input: "new", New: "no earlier build of this manifest"}}
			out = append(out, e)
			continue
		}
		e.Against = prev.ID
		e.Reasons = explainNode(prev, cur, n, missed, 0)
		out = append(out, e)
	}
	return out
}

// explainNode compares n with the node of the same key in prev.
func explainNode(prev, cur *Record, n *Node, missed func(*Node) bool, depth int) []Reason {
	p := prev.Node(n.Key)
	if p == nil {
		return []Reason{{Input: "new", New: "no such step in build " + prev.ID}}
	}
	if n.Inputs == nil {
		return []Reason{{Input: "new", New: "its key was never computed"}}
	}
	if p.Inputs == nil {
		return []Reason{{Input: "new", New: "build " + prev.ID + " never got to it"}}
	}
	if n.CacheKey != "" && n.CacheKey == p.CacheKey {
		why := "the same key as in build " + prev.ID + ", where it was " + p.State
		if p.State == "cached" || p.State == "done" || p.State == "passed" {
			why += ": the cache no longer holds it, or --no-cache was given"
		}
		return []Reason{{Input: "same-key", New: why}}
	}
	if p.Name != n.Name && p.Inputs.Kind != n.Inputs.Kind {
		return []Reason{{Input: "kind", Old: p.Name, New: n.Name}}
	}
	rs := ownChanges(n.Inputs, p.Inputs)
	if n.Inputs.Parent != p.Inputs.Parent && n.Parent != "" {
		r := Reason{Input: "parent", Path: n.Parent}
		if pn := cur.Node(n.Parent); pn != nil {
			r.New = pn.Name
			// A parent that never misses (a base, an env step) is not
			// explained on its own: say why it changed here.
			if !missed(pn) && depth < 64 {
				r.Because = explainNode(prev, cur, pn, missed, depth+1)
			}
			if pn.Kind == "base" && len(r.Because) == 1 && r.Because[0].Input == "base" {
				r = r.Because[0]
			}
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		rs = append(rs, Reason{Input: "new", New: "its key changed, but no recorded input did (a newer kiln?)"})
	}
	return rs
}

// ownChanges lists the inputs of n, other than its parent, that differ
// from p's.
func ownChanges(n, p *Inputs) []Reason {
	var rs []Reason
	if n.BaseRef != "" || p.BaseRef != "" {
		if n.BaseRef != p.BaseRef || n.BaseDigest != p.BaseDigest {
			rs = append(rs, Reason{Input: "base", Path: n.BaseRef, Old: p.BaseRef + "@" + p.BaseDigest, New: n.BaseRef + "@" + n.BaseDigest})
		}
		return rs
	}
	if n.Kind != p.Kind {
		return append(rs, Reason{Input: "kind", Old: p.Kind, New: n.Kind})
	}
	rs = append(rs, argChanges(n, p)...)
	rs = append(rs, envChanges(p.Env, n.Env)...)
	str := func(in, old, new string) {
		if old != new {
			rs = append(rs, Reason{Input: in, Old: old, New: new})
		}
	}
	str("workdir", p.Workdir, n.Workdir)
	str("user", p.User, n.User)
	str("shell", strings.Join(p.Shell, " "), strings.Join(n.Shell, " "))
	str("network", p.Network, n.Network)
	str("epoch", p.Epoch, n.Epoch)
	if !slices.Equal(n.Digests, p.Digests) {
		rs = append(rs, inputChanges(n, p)...)
	}
	return rs
}

// copyArgs names the leading arguments of a copy step's key.
var copyArgs = []string{"from", "source", "destination", "mode", "owner"}

func argChanges(n, p *Inputs) []Reason {
	if slices.Equal(n.Args, p.Args) {
		return nil
	}
	switch n.Kind {
	case "run", "test":
		if o, c := CommandText(p.Args), CommandText(n.Args); o != c {
			return []Reason{{Input: "command", Old: o, New: c}}
		}
		// The same command: its mounts (RUN --mount) changed.
		return []Reason{{Input: "args", Path: "mounts", Old: mounts(p.Args), New: mounts(n.Args)}}
	case "copy":
		var rs []Reason
		for i, name := range copyArgs {
			if a, b := at(p.Args, i), at(n.Args, i); a != b {
				rs = append(rs, Reason{Input: "args", Path: name, Old: a, New: b})
			}
		}
		if len(rs) == 0 {
			rs = append(rs, Reason{Input: "args", Old: strings.Join(p.Args[min(len(p.Args), len(copyArgs)):], " "), New: strings.Join(n.Args[min(len(n.Args), len(copyArgs)):], " ")})
		}
		return rs
	}
	return []Reason{{Input: "args", Old: strings.Join(p.Args, " "), New: strings.Join(n.Args, " ")}}
}

// mounts is the part of a run's key arguments that describes its
// mounts, readable.
func mounts(args []string) string {
	i := slices.Index(args, "\x00mounts")
	if i < 0 {
		return ""
	}
	return strings.ReplaceAll(strings.Join(args[i+1:], "; "), "\x00", " ")
}

func at(ss []string, i int) string {
	if i < len(ss) {
		return ss[i]
	}
	return ""
}

// CommandText is a run step's command as the user wrote it: the script
// of a shell form (sh -c SCRIPT), else the argv, quoted where needed.
// Mounts, which kiln appends to a run's key arguments, are left out.
func CommandText(args []string) string {
	if i := slices.Index(args, "\x00mounts"); i >= 0 {
		args = args[:i]
	}
	if len(args) >= 3 && args[len(args)-2] == "-c" {
		return args[len(args)-1]
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			q[i] = strconv.Quote(a)
		}
	}
	return strings.Join(q, " ")
}

// envChanges compares two KEY=VALUE lists.
func envChanges(old, new []string) []Reason {
	if slices.Equal(old, new) {
		return nil
	}
	o, n := envMap(old), envMap(new)
	var rs []Reason
	for _, kv := range new {
		k, _, _ := strings.Cut(kv, "=")
		if ov, ok := o[k]; !ok {
			rs = append(rs, Reason{Input: "env", Path: k, New: n[k]})
		} else if ov != n[k] {
			rs = append(rs, Reason{Input: "env", Path: k, Old: ov, New: n[k]})
		}
	}
	for _, kv := range old {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := n[k]; !ok {
			rs = append(rs, Reason{Input: "env", Path: k, Old: o[k]})
		}
	}
	if len(rs) == 0 {
		rs = append(rs, Reason{Input: "env", Old: strings.Join(old, " "), New: strings.Join(new, " ")})
	}
	return rs
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// inputChanges explains different input digests: by file for sources
// from the build context, else by what the digest stands for.
func inputChanges(n, p *Inputs) []Reason {
	if len(n.Sources) > 0 || len(p.Sources) > 0 {
		rs := fileChanges(p.Sources, n.Sources)
		if len(rs) == 0 {
			rs = append(rs, Reason{Input: "sources", Old: sourceNames(p.Sources), New: sourceNames(n.Sources)})
		}
		return rs
	}
	old, new := strings.Join(p.Digests, " "), strings.Join(n.Digests, " ")
	switch {
	case n.Kind == "template":
		return []Reason{{Input: "template", Path: at(n.Args, 0), Old: old, New: new}}
	case n.Kind == "copy" && at(n.Args, 0) != "":
		return []Reason{{Input: "stage", Path: at(n.Args, 0), Old: old, New: new}}
	case n.Kind == "run" || n.Kind == "test":
		// Its only input digest is the template values /.kiln/values.json
		// holds (executor/toolbox.go).
		return []Reason{{Input: "values", Old: old, New: new}}
	}
	return []Reason{{Input: "sources", Old: old, New: new}}
}

func sourceNames(ss []Source) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Source
	}
	return strings.Join(names, " ")
}

// fileChanges compares the files of two copies, by context-relative
// path: added, removed, and changed (contents, mode, type, link target).
func fileChanges(old, new []Source) []Reason {
	index := func(ss []Source) (map[string]buildctx.File, []string) {
		m := map[string]buildctx.File{}
		var order []string
		for _, s := range ss {
			for _, f := range s.Files {
				if _, ok := m[f.Path]; !ok {
					order = append(order, f.Path)
				}
				m[f.Path] = f
			}
		}
		return m, order
	}
	o, oOrder := index(old)
	n, nOrder := index(new)
	var rs []Reason
	for _, path := range nOrder {
		of, ok := o[path]
		nf := n[path]
		switch {
		case !ok:
			rs = append(rs, Reason{Input: "file", Path: path, New: "added"})
		case of.Type != nf.Type:
			rs = append(rs, Reason{Input: "file", Path: path, Old: "a " + of.Type, New: "a " + nf.Type})
		case of.Digest != nf.Digest:
			rs = append(rs, Reason{Input: "file", Path: path, Old: of.Digest, New: nf.Digest})
		case of.Link != nf.Link:
			rs = append(rs, Reason{Input: "file", Path: path, Old: "-> " + of.Link, New: "-> " + nf.Link})
		case of.Mode != nf.Mode:
			rs = append(rs, Reason{Input: "file", Path: path, Old: "mode " + strconv.FormatUint(uint64(of.Mode), 8), New: "mode " + strconv.FormatUint(uint64(nf.Mode), 8)})
		}
	}
	for _, path := range oOrder {
		if _, ok := n[path]; !ok {
			rs = append(rs, Reason{Input: "file", Path: path, Old: "removed"})
		}
	}
	return rs
}

// Write prints explanations as text: each node that missed, then one
// indented line per reason.
func Write(w io.Writer, es []Explanation) error {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s %s\n", e.Node, e.Name)
		writeReasons(&b, e.Reasons, "    ")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeReasons(b *strings.Builder, rs []Reason, indent string) {
	for _, r := range rs {
		b.WriteString(indent + r.String() + "\n")
		writeReasons(b, r.Because, indent+"    ")
	}
}

// String says what changed in one line (or, for a command, a few).
func (r Reason) String() string {
	q := strconv.Quote
	switch r.Input {
	case "command":
		return "the command changed:\n      now: " + indentMore(r.New) + "\n      was: " + indentMore(r.Old)
	case "file":
		switch {
		case r.New == "added":
			return "file " + r.Path + " was added"
		case r.Old == "removed":
			return "file " + r.Path + " was removed"
		}
		return "file " + r.Path + " changed: " + short(r.Old) + " → " + short(r.New)
	case "env":
		switch {
		case r.Path == "":
			return "env changed: " + q(r.Old) + " → " + q(r.New)
		case r.Old == "" && r.New != "":
			return "env " + r.Path + " was set: " + q(r.New)
		case r.New == "" && r.Old != "":
			return "env " + r.Path + " was unset (was " + q(r.Old) + ")"
		}
		return "env " + r.Path + " changed: " + q(r.Old) + " → " + q(r.New)
	case "base":
		return "the base image " + r.Path + " changed: " + r.Old + " → " + r.New
	case "parent":
		s := "its parent " + r.Path + " changed"
		if r.New != "" {
			s = "its parent " + r.Path + " (" + r.New + ") changed"
		}
		if len(r.Because) > 0 {
			s += ":"
		}
		return s
	case "args":
		if r.Path != "" {
			return "its " + r.Path + " changed: " + q(r.Old) + " → " + q(r.New)
		}
		return "its arguments changed: " + q(r.Old) + " → " + q(r.New)
	case "template":
		return "the template " + r.Path + " renders differently (its file or the values it uses changed)"
	case "stage":
		return "what it copies from stage " + r.Path + " changed"
	case "values":
		return "the template values changed (it runs kiln, which reads them)"
	case "sources":
		return "its sources changed: " + r.Old + " → " + r.New
	case "kind":
		return "a different step is here: " + q(r.Old) + " → " + q(r.New)
	case "new", "same-key":
		return r.New
	}
	return r.Input + " changed: " + q(r.Old) + " → " + q(r.New)
}

func indentMore(s string) string { return strings.ReplaceAll(s, "\n", "\n           ") }

// short abbreviates the digests in s.
func short(s string) string {
	if strings.HasPrefix(s, "sha256:") && len(s) >= 71 {
		return s[:19] + "…" + s[71:]
	}
	return s
}
