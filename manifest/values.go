package manifest

import (
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/internal/jinja"
	"github.com/kiln-build/kiln/internal/regfile"
)

// Host is what templates see as host.
type Host struct {
	Arch string // runtime.GOARCH
	OS   string // always "linux": images are Linux images
	CPUs int    // runtime.NumCPU()
}

func defaultHost() Host {
	return Host{Arch: runtime.GOARCH, OS: "linux", CPUs: runtime.NumCPU()}
}

// hostValue is what templates see as host (its keys sorted, as they
// always were).
func hostValue(h Host) *jinja.Dict {
	d := jinja.NewDict()
	d.Set("arch", h.Arch)
	d.Set("cpus", h.CPUs)
	d.Set("os", h.OS)
	return d
}

// targetValue is the template value target: the platform the build is
// for, as host is the machine it runs on.
func targetValue(t platform.Platform) *jinja.Dict {
	d := jinja.NewDict()
	d.Set("arch", t.Arch)
	d.Set("os", t.OS)
	d.Set("platform", t.String())
	d.Set("variant", t.Variant)
	return d
}

// mergeValues merges src into dst, deeply: maps merge key by key (a new
// key goes last, one dst has keeps its place, as Python's dict.update),
// any other value replaces what dst held.
func mergeValues(dst map[string]any, src *jinja.Dict) {
	for k, v := range src.All() {
		ks := k.(string)
		if sm, ok := v.(*jinja.Dict); ok {
			if dm, ok := dst[ks].(*jinja.Dict); ok {
				mergeDict(dm, sm)
				continue
			}
			cp := jinja.NewDict()
			mergeDict(cp, sm)
			v = cp
		}
		dst[ks] = v
	}
}

func mergeDict(dst, src *jinja.Dict) {
	for k, v := range src.All() {
		ks := k.(string)
		if sm, ok := v.(*jinja.Dict); ok {
			if old, ok := dst.Get(ks); ok {
				if dm, ok := old.(*jinja.Dict); ok {
					mergeDict(dm, sm)
					continue
				}
			}
			cp := jinja.NewDict()
			mergeDict(cp, sm)
			v = cp
		}
		dst.Set(ks, v)
	}
}

// nodeValue converts a YAML node to template values: maps with string
// keys (*jinja.Dict, in the order written), []any, and scalars. With
// setRules, plain scalars follow --set's rules (see parseSet) instead of
// YAML's.
func nodeValue(n *yaml.Node, file string, setRules bool) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0], file, setRules)
	case yaml.AliasNode:
		return nodeValue(n.Alias, file, setRules)
	case yaml.MappingNode:
		m := jinja.NewDict()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, Errorf(Pos{File: file, Line: k.Line, Col: k.Column}, "a key must be a string")
			}
			if _, dup := m.Get(k.Value); dup {
				return nil, Errorf(Pos{File: file, Line: k.Line, Col: k.Column}, "duplicate key %q", k.Value)
			}
			x, err := nodeValue(v, file, setRules)
			if err != nil {
				return nil, err
			}
			m.Set(k.Value, x)
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := nodeValue(c, file, setRules)
			if err != nil {
				return nil, err
			}
			l = append(l, x)
		}
		return l, nil
	}
	if setRules {
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			return n.Value, nil
		}
		return setScalar(n.Value), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, Errorf(Pos{File: file, Line: n.Line, Col: n.Column}, "%v", err)
	}
	return v, nil
}

var intRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// setScalar reads a plain --set value: true and false are booleans, a
// decimal integer is an int, anything else (3.10, 0644, null) stays a
// string, as written.
func setScalar(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if intRE.MatchString(s) {
		if i, err := strconv.Atoi(s); err == nil {
			return i
		}
	}
	return s
}

// parseSet parses one --set key=value into a map: a.b=c gives
// {a: {b: c}}. A value starting with [ or { is YAML flow syntax
// (pkgs=[curl, jq], opts={a: 1}), and {a, b}, a flow map whose keys all
// have no value, is read as the list [a, b], as Helm users write it.
func parseSet(kv string) (*jinja.Dict, error) {
	key, val, ok := strings.Cut(kv, "=")
	if !ok || key == "" {
		return nil, fmt.Errorf("--set %q: want key=value", kv)
	}
	var v any = setScalar(val)
	if t := strings.TrimSpace(val); strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{") {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(t), &n); err != nil {
			return nil, fmt.Errorf("--set %s: reading the value as YAML flow syntax: %w", key, err)
		}
		x, err := nodeValue(&n, "--set "+key, true)
		if err != nil {
			return nil, fmt.Errorf("--set %s: %w", key, err)
		}
		if m, ok := x.(*jinja.Dict); ok && len(n.Content) > 0 {
			if l, ok := helmList(n.Content[0]); ok && m.Len() > 0 {
				x = l
			}
		}
		v = x
	}
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("--set %q: empty name in the key %q", kv, key)
		}
	}
	out := jinja.NewDict()
	m := out
	for _, p := range parts[:len(parts)-1] {
		next := jinja.NewDict()
		m.Set(p, next)
		m = next
	}
	m.Set(parts[len(parts)-1], v)
	return out, nil
}

// helmList returns {a, b} as the list [a, b].
func helmList(n *yaml.Node) ([]any, bool) {
	if n.Kind != yaml.MappingNode {
		return nil, false
	}
	var l []any
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode || v.Tag != "!!null" || v.Value != "" {
			return nil, false
		}
		if k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			l = append(l, k.Value)
		} else {
			l = append(l, setScalar(k.Value))
		}
	}
	return l, true
}

// readValues reads a --values file: a YAML map.
func readValues(file string) (*jinja.Dict, error) {
	b, err := regfile.ReadPath(file)
	if err != nil {
		return nil, fmt.Errorf("reading values: %w", err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, yamlError(err, &decoder{file: file, rendered: strings.Split(string(b), "\n")})
	}
	if len(n.Content) == 0 {
		return jinja.NewDict(), nil
	}
	if n.Content[0].Kind != yaml.MappingNode {
		c := n.Content[0]
		return nil, Errorf(Pos{File: file, Line: c.Line, Col: c.Column}, "a values file must be a map of names to values")
	}
	v, err := nodeValue(&n, file, false)
	if err != nil {
		return nil, err
	}
	return v.(*jinja.Dict), nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
