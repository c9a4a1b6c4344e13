package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/name"
)

// ConfEnv is the environment variable that names the registries.conf kiln
// reads, instead of the files ConfPath looks for.
const ConfEnv = "KILN_REGISTRIES_CONF"

// Conf is what kiln reads of a containers registries.conf (version 2, as
// containers/image documents it in containers-registries.conf(5)): the
// [[registry]] tables, each with prefix, location, insecure and
// [[registry.mirror]] tables of location and insecure. A registry key kiln
// does not read (blocked, mirror-by-digest-only, a wildcard prefix) is an
// error, since ignoring it would fetch images from elsewhere than the file
// says; the tables outside [[registry]] (unqualified-search-registries,
// aliases, short-name-mode, credential-helpers) are not read: a short name
// is Docker Hub's, as for docker.
type Conf struct {
	Path       string // the file read, for messages; "" for none
	Registries []Registry
}

// Registry is one [[registry]] table.
type Registry struct {
	// Prefix is the names the table is for: "docker.io" for every name of
	// Docker Hub, "docker.io/library/alpine" for alpine's tags. It matches
	// a full name (docker.io/library/alpine:3.19) that equals it or goes on
	// with '/', ':' or '@'; the longest prefix that matches wins.
	Prefix string `toml:"prefix"`
	// Location replaces Prefix in the name to reach the image (default:
	// Prefix itself).
	Location string `toml:"location"`
	// Insecure lets Location be reached over plain HTTP or unverified
	// TLS.
	Insecure bool `toml:"insecure"`
	// Mirrors are tried in order before Location, for pulls only.
	Mirrors []Mirror `toml:"mirror"`
}

// Mirror is one [[registry.mirror]] table.
type Mirror struct {
	Location string `toml:"location"`
	Insecure bool   `toml:"insecure"`
}

// ConfPath returns the registries.conf kiln reads: $KILN_REGISTRIES_CONF
// if set, else as containers/image chooses, the user's
// ~/.config/containers/registries.conf if it exists, else
// /etc/containers/registries.conf if it exists, else "" (none).
func ConfPath() string {
	if p := os.Getenv(ConfEnv); p != "" {
		return p
	}
	var candidates []string
	if dir, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "containers", "registries.conf"))
	}
	candidates = append(candidates, "/etc/containers/registries.conf")
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// LoadConf reads the registries.conf at path; "" gives an empty Conf.
func LoadConf(path string) (*Conf, error) {
	if path == "" {
		return &Conf{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && os.Getenv(ConfEnv) == path {
			return nil, fmt.Errorf("reading the registries config: $%s names %s, which does not exist", ConfEnv, path)
		}
		return nil, fmt.Errorf("reading the registries config: %w", err)
	}
	c, err := ParseConf(path, string(b))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseConf parses text, the registries.conf at path (for messages).
func ParseConf(path, text string) (*Conf, error) {
	var f struct {
		Registries []Registry `toml:"registry"`
	}
	md, err := toml.Decode(text, &f)
	if err != nil {
		return nil, fmt.Errorf("reading the registries config %s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		if len(k) > 1 && k[0] == "registry" {
			return nil, fmt.Errorf("reading the registries config %s: kiln does not support the key %s of [[registry]] (it reads prefix, location, insecure and [[registry.mirror]] location and insecure)", path, k)
		}
		if k[0] == "registries" {
			return nil, fmt.Errorf("reading the registries config %s: [registries.*] is the version 1 format, which kiln does not read: use [[registry]] tables", path)
		}
	}
	c := &Conf{Path: path, Registries: f.Registries}
	for i := range c.Registries {
		r := &c.Registries[i]
		if r.Prefix == "" {
			r.Prefix = r.Location
		}
		if r.Location == "" {
			r.Location = r.Prefix
		}
		where := fmt.Sprintf("reading the registries config %s: [[registry]] %d (prefix %q)", path, i+1, r.Prefix)
		if r.Prefix == "" {
			return nil, fmt.Errorf("%s: it has neither prefix nor location", where)
		}
		if strings.HasPrefix(r.Prefix, "*") {
			return nil, fmt.Errorf("%s: kiln does not support wildcard prefixes", where)
		}
		locations := []string{r.Location}
		for _, m := range r.Mirrors {
			locations = append(locations, m.Location)
		}
		for _, l := range locations {
			if l == "" || strings.Contains(l, "://") {
				return nil, fmt.Errorf("%s: location %q: want HOST[:PORT][/PATH], without a scheme", where, l)
			}
		}
	}
	return c, nil
}

// full returns ref's full name as docker normalises it (see store.FullName):
// docker.io/library/busybox:latest.
func full(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	sep := ":"
	if _, ok := ref.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + ref.Context().RepositoryStr() + sep + ref.Identifier()
}

// match returns the [[registry]] table of the longest prefix that the
// full name n matches, or nil.
func (c *Conf) match(n string) *Registry {
	var best *Registry
	for i := range c.Registries {
		r := &c.Registries[i]
		rest, ok := strings.CutPrefix(n, r.Prefix)
		if !ok || (rest != "" && !strings.ContainsAny(rest[:1], "/:@")) {
			continue
		}
		if best == nil || len(r.Prefix) > len(best.Prefix) {
			best = r
		}
	}
	return best
}

// Pull returns where the image ref names is fetched from, in order: the
// mirrors of its [[registry]] table, then its location (ref itself, in
// full, when no table matches).
func (c *Conf) Pull(ref name.Reference) []string {
	n := full(ref)
	r := c.match(n)
	if r == nil {
		return []string{n}
	}
	rest := n[len(r.Prefix):]
	var out []string
	for _, m := range r.Mirrors {
		out = append(out, m.Location+rest)
	}
	return append(out, r.Location+rest)
}

// Push returns where the image ref names is sent: its location (mirrors
// are for pulls only).
func (c *Conf) Push(ref name.Reference) string {
	srcs := c.Pull(ref)
	return srcs[len(srcs)-1]
}

// insecureHosts returns the registries the tables let be reached
// insecurely.
func (c *Conf) insecureHosts() []string {
	var hosts []string
	add := func(loc string, insecure bool) {
		if insecure {
			host, _, _ := strings.Cut(loc, "/")
			hosts = append(hosts, host)
		}
	}
	for _, r := range c.Registries {
		add(r.Location, r.Insecure)
		for _, m := range r.Mirrors {
			add(m.Location, m.Insecure)
		}
	}
	return hosts
}
