package buildctx

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moby/patternmatcher"
)

// entry is a file found by a walk.
type entry struct {
	rel  string // relative to the walk's start, slash-separated; "." for the start
	fi   fs.FileInfo
	link string // a symbolic link's target
	// sum, for a regular file of a walk with a file hook, is where the
	// hook puts the sha256 of its contents.
	sum *[sha256.Size]byte
}

// walk lists the copyable files of m, with the ignore rules applied: m
// itself (rel "."), then, if it is a directory, everything under it in
// lexical order, each directory before its contents. A directory that the
// rules exclude is listed only if an exception keeps something under it.
//
// If file is not nil, walk calls it for each regular file listed, before
// going on; the regular files that a directory lists are then not stat'ed
// by the walk (see fileHook).
func (s *source) walk(ctx context.Context, m match, file fileHook) ([]entry, error) {
	w := walker{ctx: ctx, s: s, file: file}
	if !m.fi.IsDir() {
		w.emit(entry{rel: ".", fi: m.fi}, nil, filepath.Join(s.res.root, m.real))
		return w.out, nil
	}
	w.out = []entry{{rel: ".", fi: m.fi}}
	var info patternmatcher.MatchInfo
	if s.pm != nil && m.real != "." {
		s.mu.Lock()
		_, info, _ = s.pm.MatchesUsingParentResults(m.real, patternmatcher.MatchInfo{})
		s.mu.Unlock()
	}
	// m.real was resolved with links followed; below it, directories are
	// opened relative to their parent's descriptor, never through a link.
	abs := filepath.Join(s.res.root, m.real)
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: abs, Err: err}
	}
	if err := w.dir(newDirRef(fd, abs), m.real, ".", info); err != nil {
		return nil, err
	}
	return w.out, nil
}

// fileHook is told about a regular file of a walk: it is the entry name
// of the open directory d (kept open until d.release), or, when d is nil,
// at the absolute path name. When lazy, the walk did not stat it and e.fi
// is a *statInfo that the hook fills in (statFile) before anyone reads it.
type fileHook func(d *dirRef, name string, e *entry, lazy bool)

type walker struct {
	ctx     context.Context
	s       *source
	file    fileHook
	out     []entry
	pending []entry // excluded ancestors, listed once something under them is
}

// emit lists e, found in d as name (or, with no d, at the absolute path
// name).
func (w *walker) emit(e entry, d *dirRef, name string) {
	w.out = append(w.out, w.pending...)
	w.pending = w.pending[:0]
	if w.file != nil && e.fi.Mode().IsRegular() {
		e.sum = new([sha256.Size]byte)
		w.file(d, name, &e, false)
	}
	w.out = append(w.out, e)
}

// dirRef is an open directory of a walk, closed once the walk and every
// file hook it was given to are done with it (release).
type dirRef struct {
	fd   int
	path string // absolute, for messages
	refs atomic.Int32
}

func newDirRef(fd int, path string) *dirRef {
	d := &dirRef{fd: fd, path: path}
	d.refs.Store(1)
	return d
}

// hold keeps d open until a matching release.
func (d *dirRef) hold() { d.refs.Add(1) }

func (d *dirRef) release() {
	if d.refs.Add(-1) == 0 {
		unix.Close(d.fd)
	}
}

// dir lists the contents of the directory d, which is rootRel relative to
// the source's root and rel relative to the walk's start; info is what
// the ignore rules said about it. It releases d.
func (w *walker) dir(d *dirRef, rootRel, rel string, info patternmatcher.MatchInfo) error {
	defer d.release()
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := readDir(d)
	if err != nil {
		return err
	}
	for _, de := range ents {
		name := de.Name()
		cRoot, cRel := joinSlash(rootRel, name), joinSlash(rel, name)
		// A regular file that a file hook opens is stat'ed there, on the
		// open file; anything else here, relative to the open directory
		// (the kernel looks up one component, and the directory cannot
		// be swapped for a link meanwhile).
		var fi fs.FileInfo
		lazy := w.file != nil && de.Type().IsRegular()
		if lazy {
			fi = &statInfo{name: name}
		} else {
			var st unix.Stat_t
			if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &fs.PathError{Op: "lstat", Path: filepath.Join(d.path, name), Err: err}
			}
			fi = newStatInfo(name, &st)
		}
		isDir := de.IsDir()
		if !lazy {
			isDir = fi.IsDir()
		}
		var cInfo patternmatcher.MatchInfo
		excluded := false
		if w.s.pm != nil {
			w.s.mu.Lock()
			excluded, cInfo, err = w.s.pm.MatchesUsingParentResults(cRoot, info)
			w.s.mu.Unlock()
			if err != nil {
				return err
			}
		}
		if excluded && !(isDir && w.s.pm.Exclusions()) {
			continue
		}
		if !lazy && !copyable(fi) {
			w.s.skip(cRoot, fi)
			continue
		}
		e := entry{rel: cRel, fi: fi}
		if lazy {
			w.out = append(w.out, w.pending...)
			w.pending = w.pending[:0]
			e.sum = new([sha256.Size]byte)
			w.file(d, name, &e, true)
			w.out = append(w.out, e)
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.link, err = readlinkat(d, name); err != nil {
				return err
			}
		}
		if !isDir {
			w.emit(e, d, name)
			continue
		}
		if excluded {
			w.pending = append(w.pending, e)
		} else {
			w.emit(e, d, name)
		}
		fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: filepath.Join(d.path, name), Err: err}
		}
		if err := w.dir(newDirRef(fd, filepath.Join(d.path, name)), cRoot, cRel, cInfo); err != nil {
			return err
		}
		if excluded && len(w.pending) > 0 && w.pending[len(w.pending)-1].rel == cRel {
			w.pending = w.pending[:len(w.pending)-1]
		}
	}
	return nil
}

// readDir returns the entries of d, sorted by name, with their types as
// the directory gives them (stat'ed where it does not).
func readDir(d *dirRef) ([]fs.DirEntry, error) {
	fd, err := unix.Dup(d.fd)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", d.path, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

// readlinkat returns the target of the link name in d.
func readlinkat(d *dirRef, name string) (string, error) {
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(d.fd, name, buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: filepath.Join(d.path, name), Err: err}
		}
		if m < n {
			return string(buf[:m]), nil
		}
	}
}

// joinSlash is path.Join of a clean relative path and a name.
func joinSlash(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// statInfo is the fs.FileInfo of a stat(2) result.
type statInfo struct {
	name string
	st   unix.Stat_t
}

func newStatInfo(name string, st *unix.Stat_t) *statInfo { return &statInfo{name: name, st: *st} }

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.st }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }

// Mode converts st_mode as the os package does.
func (s *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
