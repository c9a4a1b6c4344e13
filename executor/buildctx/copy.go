package buildctx

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/regfile"
)

// CopyOptions are the options of a copy.
type CopyOptions struct {
	// Mode, when not nil, is the mode of every regular file copied or
	// written (its permission, setuid, setgid and sticky bits, as Go's
	// fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky: see UnixMode). The
	// default keeps each file's own mode (0644 for WriteFile). Directories
	// and links keep theirs, unless ModeDirs.
	Mode *os.FileMode
	// ModeDirs, with Mode, also gives Mode to every directory copied, and
	// Mode's permission bits to the directories made for the destination,
	// as BuildKit's COPY --chmod does.
	ModeDirs bool
	// UID and GID own every file, directory and link copied or made. The
	// default is 0:0.
	UID, GID int
	// KeepOwner keeps the owner of every file, directory and link copied
	// (as COPY --from and ADD of an archive do without --chown); UID and
	// GID then own only the directories made for the destination (the
	// destination of a directory's contents included, as in BuildKit). The
	// default is false.
	KeepOwner bool
	// Go, when not nil, starts goroutines that write the copy's regular
	// files in parallel; they must see the same mounts as the caller (a
	// copy into a root mounted by container.Mounted gives container.Go).
	// The default writes every file on the calling goroutine.
	Go func(func()) error
	// Keep, when not nil, makes the copy incremental: it keeps the files
	// put at their targets before it that are already what it would write
	// there, and notes where each file went (see Keep). Only for a copy
	// from the build context (Copy).
	Keep *Keep
}

// UnixMode returns the fs.FileMode of a Unix octal mode such as 04755: its
// permission bits, and its 04000, 02000 and 01000 bits as fs.ModeSetuid,
// fs.ModeSetgid and fs.ModeSticky (a plain conversion, fs.FileMode(04755),
// drops them).
func UnixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// dirMode is the mode of a directory made for a destination: 0755, or
// with ModeDirs Mode's permission bits.
func (o CopyOptions) dirMode() fs.FileMode {
	if o.Mode != nil && o.ModeDirs {
		return o.Mode.Perm()
	}
	return 0o755
}

// Copy copies the copy source src (see Resolve) into the root filesystem
// root at dst, with Docker COPY semantics: a file goes to dst, or into it if
// dst ends with "/" or is a directory; a directory's contents go into dst,
// which is made (mode 0755, owned by opts.UID:opts.GID, with any missing
// parents) if it does not exist and otherwise kept as it is. Several matches
// need a directory dst. Links under a copied directory are copied as links;
// files of one match that are hard links of each other are copied as hard
// links of each other.
// Files keep their mode bits (or get opts.Mode) and modification times, and
// are owned by opts.UID:opts.GID. An existing file or link in the way is
// replaced; an existing directory in the way of a file is an error; an
// existing link in the way of a directory is followed if it leads (inside
// root) to a directory. dst is resolved inside root: nothing is written
// outside it.
func (c *Context) Copy(ctx context.Context, src, root, dst string, opts CopyOptions) error {
	ms, err := c.src.matches(src)
	if err != nil {
		return err
	}
	return copyMatches(ctx, c.src, src, ms, root, dst, opts)
}

// CopyTree copies srcPath (wildcards allowed) from another stage's root
// filesystem srcRoot into root at dst, as Copy does. srcPath is resolved
// inside srcRoot as the stage's processes would see it: its absolute links
// and ".." stay inside srcRoot. No ignore rules apply.
func CopyTree(ctx context.Context, srcRoot, srcPath, root, dst string, opts CopyOptions) error {
	abs, err := filepath.Abs(srcRoot)
	if err != nil {
		return fmt.Errorf("copy %q from %s: %w", srcPath, srcRoot, err)
	}
	s := newSource(abs, false, nil)
	s.notFound = func(src string) error {
		return fmt.Errorf("copy source %q: no such file in %s", src, srcRoot)
	}
	ms, err := s.matches(srcPath)
	if err != nil {
		return err
	}
	return copyMatches(ctx, s, srcPath, ms, root, dst, opts)
}

// WriteFile writes data as the file dst inside the root filesystem root
// (resolved inside it, as Copy's dst), with mode opts.Mode (default 0644),
// owned by opts.UID:opts.GID, making missing parents as Copy does. An
// existing file or link at dst is replaced; a directory is an error.
func WriteFile(root, dst string, data []byte, opts CopyOptions) error {
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	dr := &resolver{root: rootAbs}
	real, fi, err := resolveDst(dr, dst)
	if err != nil {
		return fmt.Errorf("write %s in %s: %w", dst, root, err)
	}
	if strings.HasSuffix(dst, "/") || (fi != nil && fi.IsDir()) {
		return fmt.Errorf("write %s in %s: it is a directory", dst, root)
	}
	if err := mkdirAll(rootAbs, path.Dir(real), opts.dirMode(), opts.UID, opts.GID); err != nil {
		return fmt.Errorf("write %s in %s: %w", dst, root, err)
	}
	mode := fs.FileMode(0o644)
	if opts.Mode != nil {
		mode = *opts.Mode
	}
	c := newCopier(rootAbs, opts)
	abs := filepath.Join(rootAbs, real)
	if err := c.clear(abs); err != nil {
		return fmt.Errorf("write %s in %s: %w", dst, root, err)
	}
	if err := c.writeFile(abs, mode, opts.UID, opts.GID, func(out int) error { _, err := fdWriter(out).Write(data); return err }); err != nil {
		return fmt.Errorf("write %s in %s: %w", dst, root, err)
	}
	return nil
}

// resolveDst resolves dst inside a root, following its last component
// too when it is a link, even a dangling one: BuildKit writes through a
// link at the destination (fsutil's copy resolves the destination with
// continuity's fs.RootPath, which follows every link and keeps the
// result inside the root), so `COPY f /link` writes the link's target
// and leaves the link.
func resolveDst(dr *resolver, dst string) (string, fs.FileInfo, error) {
	return dr.resolve(dst, true)
}

func copyMatches(ctx context.Context, s *source, src string, ms []match, root, dst string, opts CopyOptions) error {
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("copy %q to %s: %w", src, dst, err)
	}
	dr := &resolver{root: rootAbs}
	real, fi, err := resolveDst(dr, dst)
	if err != nil {
		return fmt.Errorf("copy %q to %s: %w", src, dst, err)
	}
	isDir := fi != nil && fi.IsDir()
	intoDir := isDir || strings.HasSuffix(dst, "/") || real == "."
	if len(ms) > 1 && !intoDir {
		return fmt.Errorf("copy %q to %s: %d files match, so the destination must be a directory (end it with /)", src, dst, len(ms))
	}
	c := newCopier(rootAbs, opts)
	for _, m := range ms {
		// As in BuildKit, hard links are kept within one match: fsutil's
		// copier, which remembers the inodes copied, is made per source
		// path (fsutil copy/copy.go:110, 436-445).
		c.links = map[devIno]string{}
		es, err := s.walk(ctx, m, nil)
		if err != nil {
			return fmt.Errorf("copy %q: %w", src, err)
		}
		srcAbs := filepath.Join(s.res.root, m.real)
		if m.fi.IsDir() {
			if fi != nil && !isDir {
				return fmt.Errorf("copy %q to %s: a directory cannot replace a file", src, dst)
			}
			// A destination made for the directory is owned by
			// opts.UID:opts.GID, not by the directory's owner, as BuildKit
			// makes it (fsutil copy/copy.go:169-173).
			if err := mkdirAll(rootAbs, real, opts.dirMode(), opts.UID, opts.GID); err != nil {
				return fmt.Errorf("copy %q to %s: %w", src, dst, err)
			}
			if err := c.tree(ctx, srcAbs, m.name, es, real); err != nil {
				return fmt.Errorf("copy %q to %s: %w", src, dst, err)
			}
			continue
		}
		target := real
		if intoDir {
			target = path.Join(real, path.Base(m.name))
		}
		if err := mkdirAll(rootAbs, path.Dir(target), opts.dirMode(), opts.UID, opts.GID); err != nil {
			return fmt.Errorf("copy %q to %s: %w", src, dst, err)
		}
		if err := c.place(srcAbs, m.name, es[0], target); err != nil {
			return fmt.Errorf("copy %q to %s: %w", src, dst, err)
		}
	}
	if err := c.finish(); err != nil {
		return fmt.Errorf("copy %q to %s: %w", src, dst, err)
	}
	return nil
}

// writers writes a copy's regular files on a few goroutines: a file's
// creation is mostly the kernel's work, which every core can do at once.
// Files of one directory go to one writer (creations in one directory
// contend for its lock), in batches (one channel send per file costs
// about what a small file's writing does). Everything else (directories,
// links, hard-linked files) is made in walk order by the copy's own
// goroutine, so that what a link or directory resolves through is there
// when it is made; a file is handed to a writer only once its directory
// exists.
type writers struct {
	goFn    func(func()) error    // nil once the writers are started
	queues  []chan []func() error // a writer's
	batches [][]func() error      // a writer's, not yet sent
	inline  bool                  // no writer could be started: write on the caller
	pending sync.WaitGroup        // batches not done
	exited  sync.WaitGroup        // writers not returned
	mu      sync.Mutex
	err     error // the first job's error
	// targets holds the targets handed to writers since the last wait:
	// anything more at one of them waits for them all (a destination's
	// link can make two source paths one target).
	targets map[string]bool
}

// writerBatch is the number of files a writer is given at once.
const writerBatch = 16

// newWriters returns writers that goFn starts when first needed; with a
// nil goFn (or if none can be started), start writes on the caller.
func newWriters(goFn func(func()) error) *writers {
	return &writers{goFn: goFn, inline: goFn == nil, targets: map[string]bool{}}
}

// begin starts the writers.
func (w *writers) begin() {
	for range max(2, runtime.GOMAXPROCS(0)) {
		q := make(chan []func() error, 64)
		w.exited.Add(1)
		if err := w.goFn(func() { w.work(q) }); err != nil {
			w.exited.Done()
			break // the writers started will do
		}
		w.queues = append(w.queues, q)
	}
	w.goFn = nil
	w.inline = len(w.queues) == 0
	w.batches = make([][]func() error, len(w.queues))
}

// start writes target with write on the writer of its directory. It
// returns a writer's earlier error, if any, instead.
func (w *writers) start(target string, write func() error) error {
	if w.goFn != nil {
		w.begin()
	}
	if w.inline {
		return write()
	}
	if w.targets[target] {
		if err := w.wait(); err != nil {
			return err
		}
	}
	if err := w.firstErr(); err != nil {
		return err
	}
	w.targets[target] = true
	h := fnv.New32a()
	h.Write([]byte(path.Dir(target)))
	i := int(h.Sum32() % uint32(len(w.queues)))
	if w.batches[i] = append(w.batches[i], write); len(w.batches[i]) == writerBatch {
		w.flush(i)
	}
	return nil
}

// flush sends writer i its batch.
func (w *writers) flush(i int) {
	if len(w.batches[i]) == 0 {
		return
	}
	w.pending.Add(1)
	w.queues[i] <- w.batches[i]
	w.batches[i] = nil
}

func (w *writers) work(q chan []func() error) {
	defer w.exited.Done()
	for batch := range q {
		for _, write := range batch {
			if err := write(); err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.mu.Unlock()
				break
			}
		}
		w.pending.Done()
	}
}

func (w *writers) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// before waits for the writers if one is writing target.
func (w *writers) before(target string) error {
	if w.targets[target] {
		return w.wait()
	}
	return nil
}

// wait waits for every job given so far and returns the first error.
func (w *writers) wait() error {
	for i := range w.batches {
		w.flush(i)
	}
	w.pending.Wait()
	clear(w.targets)
	return w.firstErr()
}

// stop waits for every job, stops the writers and returns the first
// error.
func (w *writers) stop() error {
	err := w.wait()
	for _, q := range w.queues {
		close(q)
	}
	w.exited.Wait()
	return err
}

// copier writes files into a root filesystem.
type copier struct {
	root  string
	dr    *resolver
	opts  CopyOptions
	chown bool // whether made files need an explicit chown
	dirs  []dirMeta
	// links holds the absolute path of the copy of each multiply linked
	// file of the current match, by the source's device and inode.
	links map[devIno]string
	// noRange is set once copy_file_range fails for want of support.
	noRange atomic.Bool
}

// devIno identifies a file.
type devIno struct{ dev, ino uint64 }

// linkID returns the identity of the regular file fi when it has other
// hard links.
func linkID(fi fs.FileInfo) (devIno, bool) {
	switch st := fi.Sys().(type) {
	case *unix.Stat_t: // a walk's entries
		return devIno{uint64(st.Dev), st.Ino}, st.Nlink > 1
	case *syscall.Stat_t: // os.Lstat's
		return devIno{uint64(st.Dev), st.Ino}, st.Nlink > 1
	}
	return devIno{}, false
}

// dirMeta is the mode and time to give a copied directory once its
// contents are written.
type dirMeta struct {
	abs   string
	mode  fs.FileMode
	mtime time.Time
}

func newCopier(root string, opts CopyOptions) *copier {
	return &copier{
		root:  root,
		dr:    &resolver{root: root},
		opts:  opts,
		chown: os.Geteuid() == 0 || opts.UID != os.Geteuid() || opts.GID != os.Getegid() || opts.KeepOwner,
	}
}

// owner returns who owns the copy of the file fi: its own owner with
// KeepOwner, else the options' UID and GID.
func (c *copier) owner(fi fs.FileInfo) (uid, gid int) {
	if c.opts.KeepOwner {
		switch st := fi.Sys().(type) {
		case *unix.Stat_t: // a walk's entries
			return int(st.Uid), int(st.Gid)
		case *syscall.Stat_t: // os.Lstat's
			return int(st.Uid), int(st.Gid)
		}
	}
	return c.opts.UID, c.opts.GID
}

// tree copies the walk es of the directory srcAbs (named name in its
// source) into the directory dst (real, relative to the root), without its
// top. Its regular files are written by writers (see writers); it returns
// once they are all written.
func (c *copier) tree(ctx context.Context, srcAbs, name string, es []entry, dst string) (err error) {
	w := newWriters(c.opts.Go)
	defer func() {
		if werr := w.stop(); err == nil {
			err = werr
		}
	}()
	dirs := map[string]string{".": dst} // walk rel → real destination
	for _, e := range es[1:] {
		if err := ctx.Err(); err != nil {
			return err
		}
		parent, ok := dirs[path.Dir(e.rel)]
		if !ok {
			return fmt.Errorf("copy %s: its directory was not copied", e.rel) // walks list parents first
		}
		target := path.Join(parent, path.Base(e.rel))
		if _, linked := linkID(e.fi); e.fi.Mode().IsRegular() && !linked {
			src := filepath.Join(srcAbs, e.rel)
			if err := w.start(target, func() error { return c.place(src, path.Join(name, e.rel), e, target) }); err != nil {
				return err
			}
			continue
		}
		if err := w.before(target); err != nil {
			return err
		}
		if !e.fi.IsDir() {
			if err := c.place(filepath.Join(srcAbs, e.rel), path.Join(name, e.rel), e, target); err != nil {
				return err
			}
			continue
		}
		real, err := c.dir(target, e)
		if err != nil {
			return err
		}
		dirs[e.rel] = real
	}
	return nil
}

// dir makes the directory target (real, relative to the root) for the
// walked directory e, and returns where its contents go.
func (c *copier) dir(target string, e entry) (string, error) {
	abs := filepath.Join(c.root, target)
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	case fi.IsDir():
		c.dirs = append(c.dirs, dirMeta{abs: abs, mode: c.copiedDirMode(e.fi), mtime: e.fi.ModTime()})
		uid, gid := c.owner(e.fi)
		return target, lchown(abs, uid, gid)
	case fi.Mode()&fs.ModeSymlink != 0:
		if real, rfi, err := c.dr.resolve(target, true); err == nil && rfi != nil && rfi.IsDir() {
			return real, nil // a link to a directory (say bin -> usr/bin): keep it, fill the directory
		}
		fallthrough
	default:
		if err := os.Remove(abs); err != nil {
			return "", err
		}
	}
	if err := os.Mkdir(abs, 0o700); err != nil {
		return "", err
	}
	if c.chown {
		uid, gid := c.owner(e.fi)
		if err := os.Lchown(abs, uid, gid); err != nil {
			return "", err
		}
	}
	c.dirs = append(c.dirs, dirMeta{abs: abs, mode: c.copiedDirMode(e.fi), mtime: e.fi.ModTime()})
	return target, nil
}

// copiedDirMode is the mode to give the copy of the directory fi: its own,
// or with ModeDirs the options' Mode (special bits included), as BuildKit
// gives --chmod's mode to every directory it copies (fsutil
// copy/copy_linux.go:31-44).
func (c *copier) copiedDirMode(fi fs.FileInfo) fs.FileMode {
	if c.opts.Mode != nil && c.opts.ModeDirs {
		return *c.opts.Mode
	}
	return fi.Mode()
}

// fileMode returns the mode to give the copy of the regular file fi: its
// own, or the options' Mode.
func (c *copier) fileMode(fi fs.FileInfo) fs.FileMode {
	if c.opts.Mode != nil {
		return *c.opts.Mode
	}
	return fi.Mode()
}

// place copies the file or link e, at srcAbs and named name in its source,
// to target (relative to the root; its parent is a real directory).
func (c *copier) place(srcAbs, name string, e entry, target string) error {
	abs := filepath.Join(c.root, target)
	regular := e.fi.Mode().IsRegular()
	if !regular { // a regular file's writeFile clears its way if it must
		if err := c.clear(abs); err != nil {
			return err
		}
	}
	mtime := e.fi.ModTime()
	id, linked := linkID(e.fi)
	if linked && regular {
		if first, ok := c.links[id]; ok {
			if err := c.clear(abs); err != nil {
				return err
			}
			return os.Link(first, abs) // shares the first copy's contents, mode, owner and times
		}
		if c.links != nil {
			c.links[id] = abs
		}
	}
	if k := c.opts.Keep; k != nil && regular && !linked {
		k.note(name, target)
		uid, gid := c.owner(e.fi)
		if c.chown && k.keep(target, name, e.fi.Size(), modeBits(c.fileMode(e.fi)), uid, gid, mtime.UnixNano()) {
			return nil
		}
	}
	switch {
	case regular:
		// O_NONBLOCK: a file swapped for a FIFO since the walk must not
		// block the copy; it is refused below. Plain system calls, not an
		// *os.File, which would try the poller: four calls a file more.
		in, err := openRetry(srcAbs, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: srcAbs, Err: err}
		}
		defer unix.Close(in)
		var st unix.Stat_t
		if err := unix.Fstat(in, &st); err != nil {
			return &fs.PathError{Op: "stat", Path: srcAbs, Err: err}
		}
		if now := newStatInfo("", &st).Mode(); !now.IsRegular() {
			return fmt.Errorf("copy %s: it changed while being copied (now %s)", srcAbs, regfile.Kind(now))
		}
		uid, gid := c.owner(e.fi)
		if err := c.writeFile(abs, c.fileMode(e.fi), uid, gid, func(out int) error { return c.copyFD(out, in, st.Size) }); err != nil {
			return err
		}
	case e.fi.Mode()&fs.ModeSymlink != 0:
		link := e.link
		if link == "" {
			var err error
			if link, err = os.Readlink(srcAbs); err != nil {
				return err
			}
		}
		if err := os.Symlink(link, abs); err != nil {
			return err
		}
		if c.chown {
			uid, gid := c.owner(e.fi)
			if err := os.Lchown(abs, uid, gid); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	return setTimes(abs, mtime)
}

// clear removes the file or link at abs, if any, so that a file can be
// made there; a directory there is an error.
func (c *copier) clear(abs string) error {
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory: a file cannot replace it", abs)
	}
	return os.Remove(abs)
}

// writeFile makes the file abs with write (given the open file), with
// mode, owned by uid:gid. A file or link already at abs is replaced (see
// clear).
func (c *copier) writeFile(abs string, mode fs.FileMode, uid, gid int, write func(fd int) error) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	out, err := openRetry(abs, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err := c.clear(abs); err != nil {
			return err
		}
		out, err = openRetry(abs, flags, 0o600)
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: abs, Err: err}
	}
	if err := write(out); err != nil {
		unix.Close(out)
		return fmt.Errorf("write %s: %w", abs, err)
	}
	if c.chown {
		if err := unix.Fchown(out, uid, gid); err != nil {
			unix.Close(out)
			return &fs.PathError{Op: "chown", Path: abs, Err: err}
		}
	}
	if err := unix.Fchmod(out, modeBits(mode)); err != nil { // after chown, which clears setuid
		unix.Close(out)
		return &fs.PathError{Op: "chmod", Path: abs, Err: err}
	}
	if err := unix.Close(out); err != nil {
		return &fs.PathError{Op: "close", Path: abs, Err: err}
	}
	return nil
}

// openRetry is open(2), again when a signal interrupts it.
func openRetry(p string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(p, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// copyFD copies the rest of the file in, of size bytes when it was
// stat'ed, to the file out: in the kernel where it can (copy_file_range;
// not across file systems, as from a context into an overlay, which
// c.noRange remembers), else through a buffer that fits the file.
func (c *copier) copyFD(out, in int, size int64) error {
	for first := true; !c.noRange.Load(); first = false {
		n, err := unix.CopyFileRange(in, nil, out, nil, 1<<30, 0)
		switch {
		case err == unix.EINTR:
			continue
		case first && (err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP):
			c.noRange.Store(true)
		case err != nil:
			return err
		case n == 0:
			return nil
		}
	}
	_, err := io.CopyBuffer(fdWriter(out), fdReader(in), make([]byte, min(size+1, 64<<10)))
	return err
}

// fdReader and fdWriter read and write a file descriptor.
type (
	fdReader int
	fdWriter int
)

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (w fdWriter) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(int(w), p[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// finish gives the copied directories their modes and modification times,
// deepest first, now that their contents are written.
func (c *copier) finish() error {
	for i := len(c.dirs) - 1; i >= 0; i-- {
		d := c.dirs[i]
		if err := os.Chmod(d.abs, d.mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if err := setTimes(d.abs, d.mtime); err != nil {
			return err
		}
	}
	c.dirs = nil
	return nil
}

// setTimes sets the access and modification times of abs (not following a
// link) to mtime.
func setTimes(abs string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, abs, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: abs, Err: err}
	}
	return nil
}
