package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// WriteDiff writes the changes of dir against the merged view of lowers as a
// layer tar to w. lowers are layer directories in overlay form, base first.
// It is a naive diff, for when no overlayfs upperdir exists: every entry of
// dir whose type, mode, owner, size, mtime, symlink target, device number or
// extended attributes differ from the merged view is written (with its
// contents when the sizes and mtimes are equal but the mtime has no
// nanoseconds, which hints that it came from a tar and may hide a change),
// and a path of the merged view that dir lacks is written as a .wh.NAME
// whiteout (only the topmost removed path, not its children). The parent
// directories of every written entry are written too, with their metadata
// in dir, as an overlayfs upperdir would hold them.
func WriteDiff(ctx context.Context, w io.Writer, lowers []string, dir string, opts ...Option) error {
	d := &differ{writer: newWriter(w, opts)}
	sources := make([]string, 0, len(lowers))
	for i := len(lowers) - 1; i >= 0; i-- {
		sources = append(sources, lowers[i])
	}
	if err := d.diff(ctx, dir, ".", sources); err != nil {
		return fmt.Errorf("write diff of %s: %w", dir, err)
	}
	return d.close()
}

type differ struct {
	*writer
	cmpBuf []byte
	// pending holds the unchanged directories on the path to the entry
	// being compared. They are written before the first change below them,
	// so that an applier never creates a parent with made-up metadata.
	pending []pendingDir
}

type pendingDir struct {
	name, path string
	st         unix.Stat_t
	xattrs     map[string]string
}

// flush writes the pending parent directories.
func (d *differ) flush() error {
	for i := range d.pending {
		pd := &d.pending[i]
		if err := d.entry(pd.name, pd.path, &pd.st, pd.xattrs); err != nil {
			return err
		}
	}
	clear(d.pending)
	d.pending = d.pending[:0]
	return nil
}

// lowerEntry is one path of the merged view of the lowers.
type lowerEntry struct {
	path    string // in the topmost lower that has it
	st      unix.Stat_t
	deleted bool     // a whiteout hides it
	sources []string // for a directory: the lower directories merged into it, topmost first
	final   bool     // lower layers below the last source cannot contribute
}

// merged lists the merged view of the directories sources (topmost first),
// applying whiteouts and opaque directories. Deleted names are left in the
// map so that they stay deleted.
func (d *differ) merged(sources []string) (map[string]*lowerEntry, error) {
	ents := make(map[string]*lowerEntry)
	for _, src := range sources {
		names, err := readNames(src)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			e := ents[name]
			if e != nil && e.final {
				continue
			}
			p := src + "/" + name
			var st unix.Stat_t
			if err := lstat(p, &st); err != nil {
				return nil, err
			}
			if e == nil {
				e = &lowerEntry{path: p, st: st}
				ents[name] = e
				switch {
				case isWhiteout(&st):
					e.deleted, e.final = true, true
					continue
				case !isDir(&st):
					e.final = true
					continue
				}
			} else if !isDir(&st) {
				// A whiteout or non-directory below a directory ends it.
				e.final = true
				continue
			}
			e.sources = append(e.sources, p)
			opaque, err := d.x.isOpaque(p)
			if err != nil {
				return nil, err
			}
			e.final = opaque
		}
	}
	return ents, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	return names, nil
}

// diff writes the changes below the directory full (relative path rel)
// against the merged view of sources.
func (d *differ) diff(ctx context.Context, full, rel string, sources []string) error {
	ents, err := readDir(full)
	if err != nil {
		return err
	}
	var lower map[string]*lowerEntry
	if len(sources) > 0 {
		if lower, err = d.merged(sources); err != nil {
			return err
		}
	}
	// Paths only in the lowers become whiteouts, sorted with the rest.
	n := len(ents)
	for name, le := range lower {
		if le.deleted {
			continue
		}
		i := sort.Search(n, func(i int) bool { return ents[i].name >= name })
		if i < n && ents[i].name == name {
			continue
		}
		ents = append(ents, dirent{name: name, key: whiteoutPrefix + name})
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].key < ents[j].key })

	for i := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &ents[i]
		name := join(rel, e.name)
		if e.key != e.name {
			if err := d.flush(); err != nil {
				return err
			}
			if err := d.whiteout(join(rel, e.key)); err != nil {
				return err
			}
			continue
		}
		if fileType(&e.st) == unix.S_IFSOCK {
			continue
		}
		p := full + "/" + e.name
		xattrs, _, err := d.x.read(p)
		if err != nil {
			return err
		}
		le := lower[e.name]
		if le != nil && le.deleted {
			le = nil
		}
		changed := true
		if le != nil {
			if changed, err = d.changed(p, &e.st, xattrs, le); err != nil {
				return err
			}
		}
		if changed {
			if err := d.flush(); err != nil {
				return err
			}
			if err := d.entry(name, p, &e.st, xattrs); err != nil {
				return err
			}
		}
		if !isDir(&e.st) {
			continue
		}
		var sub []string
		if le != nil && isDir(&le.st) {
			sub = le.sources
		}
		depth := len(d.pending)
		if !changed {
			d.pending = append(d.pending, pendingDir{name: name, path: p, st: e.st, xattrs: xattrs})
		}
		if err := d.diff(ctx, p, name, sub); err != nil {
			return err
		}
		if len(d.pending) > depth {
			d.pending = d.pending[:depth]
		}
	}
	return nil
}

// changed reports whether the entry p of dir differs from the lower entry le.
func (d *differ) changed(p string, st *unix.Stat_t, xattrs map[string]string, le *lowerEntry) (bool, error) {
	lst := &le.st
	typ := fileType(st)
	if typ != fileType(lst) || st.Mode != lst.Mode || st.Uid != lst.Uid || st.Gid != lst.Gid ||
		st.Mtim != lst.Mtim {
		return true, nil
	}
	switch typ {
	case unix.S_IFREG:
		if st.Size != lst.Size {
			return true, nil
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if st.Rdev != lst.Rdev {
			return true, nil
		}
	case unix.S_IFLNK:
		a, err := os.Readlink(p)
		if err != nil {
			return false, err
		}
		b, err := os.Readlink(le.path)
		if err != nil {
			return false, err
		}
		if a != b {
			return true, nil
		}
	}
	lx, _, err := d.x.read(le.path)
	if err != nil {
		return false, err
	}
	if !maps.Equal(xattrs, lx) {
		return true, nil
	}
	if typ == unix.S_IFREG && st.Mtim.Nsec == 0 && st.Size > 0 {
		same, err := d.sameContents(p, le.path)
		return !same, err
	}
	return false, nil
}

// sameContents compares the contents of two regular files of equal size.
func (d *differ) sameContents(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	if d.cmpBuf == nil {
		d.cmpBuf = make([]byte, 2*bufferSize)
	}
	ba, bb := d.cmpBuf[:bufferSize], d.cmpBuf[bufferSize:]
	for {
		na, errA := io.ReadFull(fa, ba)
		nb, errB := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		endA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		switch {
		case errA != nil && !endA:
			return false, fmt.Errorf("read %s: %w", a, errA)
		case errB != nil && !endB:
			return false, fmt.Errorf("read %s: %w", b, errB)
		case endA || endB:
			return endA && endB, nil
		}
	}
}
