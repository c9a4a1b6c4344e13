package toolbox

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/engine"
)

// The paths inside a container.
const (
	// Dir holds everything else; nothing under it reaches a layer.
	Dir = "/.kiln"
	// Binary is kiln's own static binary.
	Binary = Dir + "/bin/kiln"
	// Values is the build's template values, as a JSON object.
	Values = Dir + "/values.json"
	// Tools holds one directory per toolbox: entry.
	Tools = Dir + "/toolbox"
)

// imagePrefix marks a toolbox: entry that is an image.
const imagePrefix = "image:"

// Entry is one toolbox: entry of a stage, as written: "DIR" (relative to
// the build context), "image:REF", or either as "NAME=…".
type Entry struct {
	Name  string // the directory under Tools
	Dir   string // a directory of the build context, or ""
	Image string // an image reference, or ""
}

// ParseEntry parses a toolbox: entry. The name is the one given, else
// the base name of the directory, else the last path element of the
// image's repository ("image:registry:5000/tools/jq:1.7" is "jq").
func ParseEntry(s string) (Entry, error) {
	var e Entry
	spec := s
	if name, rest, ok := strings.Cut(s, "="); ok && !strings.ContainsAny(name, "/:") {
		e.Name, spec = name, rest
	}
	if ref, ok := strings.CutPrefix(spec, imagePrefix); ok {
		if ref == "" {
			return e, fmt.Errorf("toolbox %q: name an image after image: (image:REF)", s)
		}
		e.Image = ref
		if e.Name == "" {
			repo := ref
			if i := strings.IndexByte(repo, '@'); i >= 0 {
				repo = repo[:i]
			}
			if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
				repo = repo[:i]
			}
			e.Name = path.Base(repo)
		}
	} else {
		if spec == "" {
			return e, fmt.Errorf("toolbox %q: no directory", s)
		}
		e.Dir = spec
		if e.Name == "" {
			e.Name = path.Base(path.Clean(filepath.ToSlash(spec)))
		}
	}
	if e.Name == "" || e.Name == "." || e.Name == ".." || e.Name == "/" || strings.Contains(e.Name, "/") {
		return e, fmt.Errorf("toolbox %q: %q cannot name a directory: write NAME=%s", s, e.Name, spec)
	}
	return e, nil
}

// Tool is a resolved toolbox entry: its name, and the host directories
// that make it, base first (one directory, or an image's layers).
type Tool struct {
	Name string
	Dirs []string
	// Entry is the entry as written; Image and Digest, for an image
	// entry, its reference and the digest it resolved to ("" for
	// scratch). A Record keeps them.
	Entry  string
	Image  string
	Digest string
}

// Mounts returns a container's /.kiln: a tmpfs, then kiln's binary,
// the values file and every tool, read-only. An empty binary or values
// path leaves that one out.
func Mounts(binary, values string, tools []Tool) []engine.Mount {
	ro := []string{"ro", "nosuid", "nodev"}
	ms := []engine.Mount{{Type: "tmpfs", Source: "tmpfs", Target: Dir, Options: []string{"mode=755", "size=1m", "nosuid", "nodev"}}}
	if binary != "" {
		ms = append(ms, engine.Mount{Type: "bind", Source: binary, Target: Binary, Options: ro})
	}
	if values != "" {
		ms = append(ms, engine.Mount{Type: "bind", Source: values, Target: Values, Options: append(ro, "noexec")})
	}
	for _, t := range tools {
		target := Tools + "/" + t.Name
		switch len(t.Dirs) {
		case 0:
			ms = append(ms, engine.Mount{Type: "tmpfs", Source: "tmpfs", Target: target, Options: []string{"ro", "size=4k"}})
		case 1:
			ms = append(ms, engine.Mount{Type: "bind", Source: t.Dirs[0], Target: target, Options: ro})
		default:
			lowers := make([]string, len(t.Dirs))
			for i, d := range t.Dirs {
				lowers[len(t.Dirs)-1-i] = d // overlayfs wants the top-most first
			}
			ms = append(ms, engine.Mount{Type: "overlay", Source: "overlay", Target: target, Options: append(ro, "lowerdir="+strings.Join(lowers, ":"))})
		}
	}
	return ms
}

// InContainer reports whether this process is the binary mounted at
// Binary, run inside a container: then kiln acts as the helper.
func InContainer() bool {
	mounted, err := os.Stat(Binary)
	if err != nil {
		return false
	}
	self, err := os.Stat("/proc/self/exe")
	return err == nil && os.SameFile(self, mounted)
}

// Static reports whether the executable at p is statically linked (it
// names no program interpreter), so that it runs in any container.
func Static(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
