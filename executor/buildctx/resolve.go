package buildctx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// maxLinks is how many symbolic links a resolution follows before it fails,
// as the kernel's ELOOP limit for a path (40) but per whole resolution.
const maxLinks = 255

// resolver resolves paths inside a root directory without ever leaving it.
type resolver struct {
	root string // absolute, cleaned
	// strict makes a missing directory on the way an error (for a copy's
	// sources). Either way, ".." at the root stays at the root, and a
	// link's absolute target starts from the root: paths resolve as a
	// process chrooted there would see them, as continuity's fs.RootPath
	// resolves BuildKit's copy sources (a context's link "/real/f" is the
	// context's real/f).
	strict bool
	// hidden, if not nil, reports whether a root-relative path (a
	// directory, if dir) is ignored; resolution treats it as missing.
	hidden func(rel string, dir bool) bool
}

// resolve resolves p (slash-separated, relative to the root; a leading "/"
// means the root) and returns the real path it names, relative to the root
// ("." for the root), and its Lstat info. Links are followed on the way and,
// if followLast, at the end too. When the path does not exist, resolve
// returns the real path it would have (its missing components appended)
// and a nil info. A component before the last that is not a directory is
// an error wrapping syscall.ENOTDIR, and for a strict resolver, one that is
// missing is an error wrapping fs.ErrNotExist.
func (r *resolver) resolve(p string, followLast bool) (string, fs.FileInfo, error) {
	var cur []string // real components resolved so far
	todo := splitPath(p)
	links := 0
	var fi fs.FileInfo
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				continue
			}
			cur = cur[:len(cur)-1]
			fi = nil
			continue
		}
		next := joinRel(append(cur, c))
		info, err := os.Lstat(filepath.Join(r.root, next))
		if errors.Is(err, fs.ErrNotExist) {
			return r.missing(next, todo)
		}
		if err != nil {
			return "", nil, err
		}
		if r.hidden != nil && r.hidden(next, info.IsDir()) {
			return r.missing(next, todo)
		}
		if info.Mode()&fs.ModeSymlink != 0 && (len(todo) > 0 || followLast) {
			if links++; links > maxLinks {
				return "", nil, &fs.PathError{Op: "resolve", Path: p, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(filepath.Join(r.root, next))
			if err != nil {
				return "", nil, err
			}
			if path.IsAbs(filepath.ToSlash(target)) {
				cur = nil
			}
			todo = append(splitPath(target), todo...)
			continue
		}
		if len(todo) > 0 && !info.IsDir() && !onlyDots(todo) {
			return "", nil, &fs.PathError{Op: "resolve", Path: p, Err: syscall.ENOTDIR}
		}
		cur = append(cur, c)
		fi = info
	}
	if fi == nil { // the root itself, or reached by ".."
		info, err := os.Lstat(filepath.Join(r.root, joinRel(cur)))
		if err != nil {
			return "", nil, err
		}
		fi = info
	}
	return joinRel(cur), fi, nil
}

// missing is resolve's answer when next does not exist and todo remains.
// It is fine if nothing but dots remain (resolved as on a directory); a
// strict resolver fails otherwise, while another returns the path that
// would be made, the rest of the path taken lexically (no links can be on
// it) and kept inside the root.
func (r *resolver) missing(next string, todo []string) (string, fs.FileInfo, error) {
	if onlyDots(todo) {
		return next, nil, nil
	}
	if r.strict || slices.Contains(todo, "..") { // as the kernel: no ".." out of a missing directory
		return "", nil, &fs.PathError{Op: "resolve", Path: next, Err: fs.ErrNotExist}
	}
	p := strings.TrimPrefix(path.Clean("/"+next+"/"+strings.Join(todo, "/")), "/")
	if p == "" {
		p = "."
	}
	return p, nil, nil
}

// onlyDots reports whether comps are all "" or "." (a trailing slash).
func onlyDots(comps []string) bool {
	for _, c := range comps {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

func splitPath(p string) []string {
	return strings.Split(filepath.ToSlash(p), "/")
}

// joinRel joins real components into a root-relative path, "." for none.
func joinRel(comps []string) string {
	if len(comps) == 0 {
		return "."
	}
	return strings.Join(comps, "/")
}

// mkdirAll makes the directory rel (a real path relative to root, as resolve
// returns) and its missing parents, with mode and owned by uid:gid. It
// fails if a component exists and is not a directory.
func mkdirAll(root, rel string, mode fs.FileMode, uid, gid int) error {
	p := root
	for _, c := range splitPath(rel) {
		if c == "" || c == "." {
			continue
		}
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if err == nil {
			if !fi.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Mkdir(p, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			return err
		}
		if err := lchown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// lchown sets the owner of p (not following a link), unless it has it
// already, which spares a syscall per file and lets non-root callers copy
// files owned by themselves.
func lchown(p string, uid, gid int) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return fmt.Errorf("set owner %d:%d: %w", uid, gid, err)
	}
	return nil
}
