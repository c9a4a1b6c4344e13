package buildctx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/kiln-build/kiln/internal/regfile"
)

// Context is a build context: a directory and its ignore rules. Its methods
// may be called from several goroutines.
type Context struct {
	dir string
	src *source
}

// ignoreFiles are the files whose patterns a context ignores, the first
// that exists winning.
var ignoreFiles = [...]string{".kilnignore", ".dockerignore"}

// Option configures a Context.
type Option func(*options)

type options struct {
	warn func(msg string)
}

// WithWarn sets the function told about each file of the context that a
// copy or digest skips because it cannot be copied (a socket, FIFO or
// device), once per file, with a message naming it. It may be called from
// several goroutines at once. The default says nothing.
func WithWarn(warn func(msg string)) Option {
	return func(o *options) { o.warn = warn }
}

// Open opens the build context dir and reads its ignore rules: .kilnignore
// if present, else .dockerignore.
func Open(dir string, opts ...Option) (*Context, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open build context %s: %w", dir, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("open build context %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open build context %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open build context %s: not a directory", dir)
	}
	c := &Context{dir: abs}
	var pm *patternmatcher.PatternMatcher
	for _, name := range ignoreFiles {
		p := filepath.Join(abs, name)
		f, err := regfile.Open(abs, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open build context %s: %w", dir, err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if pm, err = patternmatcher.New(patterns); err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		break
	}
	c.src = newSource(abs, true, pm)
	c.src.warn = o.warn
	c.src.notFound = func(src string) error {
		return fmt.Errorf("copy source %q: no such file in the build context", src)
	}
	c.src.outside = func(src string) error {
		return fmt.Errorf("copy source %q is outside the build context %s", src, abs)
	}
	return c, nil
}

// Dir returns the context's directory: absolute, with symbolic links
// resolved.
func (c *Context) Dir() string { return c.dir }

// Resolve returns the context-relative, slash-separated paths that the copy
// source src names, sorted: src itself, or what its wildcards match (with
// filepath.Match semantics per component). Ignored files never match. A
// source outside the context (absolute, "../" after cleaning, or through a
// link that leads out) is an error, and so is one that matches nothing.
func (c *Context) Resolve(src string) ([]string, error) {
	ms, err := c.src.matches(src)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	return names, nil
}

// ErrNoMatch is wrapped by the error for a copy source with wildcards
// that matches nothing; nothing was read or written. A Dockerfile's COPY
// and ADD allow it and copy nothing, as BuildKit does.
var ErrNoMatch = errors.New("the wildcard matches no file")

// noMatch is the error for a wildcard that matches nothing: the source's
// own not-found error, which is also ErrNoMatch.
type noMatch struct{ error }

func (e noMatch) Unwrap() error        { return e.error }
func (e noMatch) Is(target error) bool { return target == ErrNoMatch }

// source is a tree that files are copied from: a build context, or another
// stage's root filesystem.
type source struct {
	res resolver
	// pm holds the ignore rules, or is nil. Its methods are not safe for
	// concurrent use: hold mu.
	pm *patternmatcher.PatternMatcher
	mu sync.Mutex
	// The errors for a source that matches nothing and one that leads out
	// of the root (strict resolvers only).
	notFound, outside func(src string) error
	// warn, if not nil, is told about skipped files, each once (warned).
	warn   func(msg string)
	warned sync.Map
}

// onlyCopyable says what a copy or digest takes.
const onlyCopyable = "only regular files, directories and links are copied"

// skip notes that the file rel (relative to the root) is not copied, with
// a warning the first time.
func (s *source) skip(rel string, fi fs.FileInfo) {
	if s.warn == nil {
		return
	}
	if _, dup := s.warned.LoadOrStore(rel, true); dup {
		return
	}
	s.warn(fmt.Sprintf("skipping %s %q in %s: %s", regfile.Kind(fi.Mode()), rel, s.res.root, onlyCopyable))
}

func newSource(root string, strict bool, pm *patternmatcher.PatternMatcher) *source {
	s := &source{res: resolver{root: root, strict: strict}, pm: pm}
	if pm != nil {
		s.res.hidden = s.hidden
	}
	return s
}

// excluded reports whether the ignore rules exclude rel (slash-separated,
// relative to the root), by a pattern on it or on a parent.
func (s *source) excluded(rel string) bool {
	if s.pm == nil || rel == "." {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.pm.MatchesOrParentMatches(rel)
	return err == nil && m // patterns were checked by New; a failing match hides nothing
}

// hidden reports whether resolution should treat rel as missing: it is
// excluded and, if a directory, no "!" exception could bring back a file
// under it.
func (s *source) hidden(rel string, dir bool) bool {
	if dir && s.pm.Exclusions() {
		return false
	}
	return s.excluded(rel)
}

// match is a path that a copy source names.
type match struct {
	name string      // as matched, relative to the root: "src/a.txt"
	real string      // the real path it leads to, links followed: "lib/a.txt"
	fi   fs.FileInfo // of real
}

// matches returns what src names, sorted by name: see Context.Resolve.
func (s *source) matches(src string) ([]match, error) {
	p := filepath.ToSlash(src)
	if s.res.strict {
		if path.IsAbs(p) {
			return nil, s.outside(src)
		}
		p = path.Clean(p)
		if p == ".." || strings.HasPrefix(p, "../") {
			return nil, s.outside(src)
		}
	} else {
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		if p == "" {
			p = "."
		}
	}
	rootInfo, err := os.Lstat(s.res.root)
	if err != nil {
		return nil, fmt.Errorf("copy source %q: %w", src, err)
	}
	cands := []match{{name: ".", real: ".", fi: rootInfo}}
	for _, comp := range strings.Split(p, "/") {
		if comp == "." {
			continue
		}
		var next []match
		for _, cd := range cands {
			var names []string
			if hasMeta(comp) {
				var err error
				if names, err = s.glob(cd.real, comp); err != nil {
					return nil, fmt.Errorf("copy source %q: %w", src, err)
				}
			} else {
				names = []string{comp}
			}
			for _, n := range names {
				real, fi, err := s.res.resolve(path.Join(cd.real, n), true)
				switch {
				case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
					continue
				case err != nil:
					return nil, fmt.Errorf("copy source %q: %w", src, err)
				case fi == nil:
					continue
				}
				next = append(next, match{name: path.Join(cd.name, n), real: real, fi: fi})
			}
		}
		cands = next
	}
	var out []match
	for _, m := range cands {
		if !copyable(m.fi) {
			if !hasMeta(p) {
				// named, not matched: never opened, and not silently missing
				return nil, fmt.Errorf("copy source %q is %s: %s", src, regfile.Kind(m.fi.Mode()), onlyCopyable)
			}
			s.skip(m.real, m.fi)
			continue
		}
		if m.fi.IsDir() && s.excluded(m.real) {
			// Excluded, but an exception might keep something under it.
			es, err := s.walk(context.Background(), m, nil)
			if err != nil {
				return nil, fmt.Errorf("copy source %q: %w", src, err)
			}
			if len(es) <= 1 {
				continue
			}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		if hasMeta(p) {
			return nil, noMatch{s.notFound(src)}
		}
		return nil, s.notFound(src)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// glob returns the names in the directory dir (real, relative to the root)
// that match pattern, sorted. A dir that is missing or not a directory has
// none.
func (s *source) glob(dir, pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(s.res.root, dir))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if ok, _ := path.Match(pattern, e.Name()); ok {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// hasMeta reports whether a path (or a component) has filepath.Match
// wildcards: "*", "?" or "[" not escaped by a backslash. A backslash alone
// is no wildcard: a name whose only specials are escaped is the file of
// that very name, backslashes included, as BuildKit reads a copy source
// on Linux (fsutil copy/copy.go:674-685, containsWildcards).
func hasMeta(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[':
			return true
		case '\\':
			i++
		}
	}
	return false
}

// copyable reports whether a file of this type is copied: regular files,
// directories and symbolic links are; sockets, FIFOs and devices are not.
func copyable(fi fs.FileInfo) bool {
	return fi.Mode()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) == 0
}
