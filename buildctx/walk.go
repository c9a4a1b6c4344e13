package buildctx

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
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
// If file is not nil, walk calls it for each regular file listed, with its
// absolute path and entry, before going on.
func (s *source) walk(ctx context.Context, m match, file func(abs string, e *entry)) ([]entry, error) {
	w := walker{ctx: ctx, s: s, file: file}
	if !m.fi.IsDir() {
		w.emit(entry{rel: ".", fi: m.fi}, filepath.Join(s.res.root, m.real))
		return w.out, nil
	}
	w.out = []entry{{rel: ".", fi: m.fi}}
	var info patternmatcher.MatchInfo
	if s.pm != nil && m.real != "." {
		s.mu.Lock()
		_, info, _ = s.pm.MatchesUsingParentResults(m.real, patternmatcher.MatchInfo{})
		s.mu.Unlock()
	}
	if err := w.dir(filepath.Join(s.res.root, m.real), m.real, ".", info); err != nil {
		return nil, err
	}
	return w.out, nil
}

type walker struct {
	ctx     context.Context
	s       *source
	file    func(abs string, e *entry)
	out     []entry
	pending []entry // excluded ancestors, listed once something under them is
}

// emit lists e, found at abs.
func (w *walker) emit(e entry, abs string) {
	w.out = append(w.out, w.pending...)
	w.pending = w.pending[:0]
	if w.file != nil && e.fi.Mode().IsRegular() {
		e.sum = new([sha256.Size]byte)
		w.file(abs, &e)
	}
	w.out = append(w.out, e)
}

// dir lists the contents of the directory abs, which is rootRel relative
// to the source's root and rel relative to the walk's start; info is what
// the ignore rules said about it.
func (w *walker) dir(abs, rootRel, rel string, info patternmatcher.MatchInfo) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	d, err := os.Open(abs)
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", abs, err)
	}
	sort.Strings(names)
	for _, name := range names {
		cAbs := filepath.Join(abs, name)
		cRoot := path.Join(rootRel, name)
		cRel := path.Join(rel, name)
		// fstatat relative to the open directory: the kernel looks up one
		// component instead of the whole path, a quarter less time.
		var st unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "lstat", Path: cAbs, Err: err}
		}
		fi := newStatInfo(name, &st)
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
		if excluded && !(fi.IsDir() && w.s.pm.Exclusions()) {
			continue
		}
		if !copyable(fi) {
			w.s.skip(cRoot, fi)
			continue
		}
		e := entry{rel: cRel, fi: fi}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.link, err = os.Readlink(cAbs); err != nil {
				return err
			}
		}
		if !fi.IsDir() {
			w.emit(e, cAbs)
			continue
		}
		if excluded {
			w.pending = append(w.pending, e)
		} else {
			w.emit(e, cAbs)
		}
		if err := w.dir(cAbs, cRoot, cRel, cInfo); err != nil {
			return err
		}
		if excluded && len(w.pending) > 0 && w.pending[len(w.pending)-1].rel == cRel {
			w.pending = w.pending[:len(w.pending)-1]
		}
	}
	return nil
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
