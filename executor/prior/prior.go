package prior

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/executor/buildctx"
)

// Lineage is the key of a copy step's records: its cache key's input
// without the digests of what it copies.
func Lineage(in cache.KeyInput) cache.Key {
	in.Inputs = nil
	in.Args = append(append([]string(nil), in.Args...), "\x00prior-v1")
	return cache.ComputeKey(in)
}

// Record is a copy step's previous result.
type Record struct {
	// DiffID is its layer's.
	DiffID v1.Hash
	// Files are where each regular file of its sources went (see
	// buildctx.Keep.Placed), with the sha256 of what the layer holds
	// there.
	Files []File
}

// File is a regular file of a copy's layer, copied from a source file.
type File struct {
	buildctx.Placed
	Sum [sha256.Size]byte
}

// Store keeps the records of a kiln root, one file per lineage.
type Store struct {
	dir    string
	create func() (*os.File, error)
	has    func(diffID v1.Hash) bool
}

// NewStore returns the Store of records kept in dir, written into files
// that create makes on dir's file system (in a directory swept after a
// crash) and renamed. has reports whether the root still has the
// directory of a layer: a record of a layer that it has not is of no use
// and is removed when another is written.
func NewStore(dir string, create func() (*os.File, error), has func(diffID v1.Hash) bool) *Store {
	return &Store{dir: dir, create: create, has: has}
}

func (s *Store) path(k cache.Key) string { return filepath.Join(s.dir, k.String()) }

// recordMagic starts a record file; change it whenever the format
// changes. What follows is the layer's diffID and a newline, then per
// file its target and source, each ended by a NUL, and its 32-byte sum.
const recordMagic = "kiln copy record v1\n"

// Read returns the record of lineage k; ok is false when there is none or
// it does not parse.
func (s *Store) Read(k cache.Key) (r Record, ok bool) {
	b, err := os.ReadFile(s.path(k))
	if err != nil {
		return Record{}, false
	}
	r, err = parse(b)
	return r, err == nil
}

// parse reads a record file's contents.
func parse(b []byte) (Record, error) {
	rest, ok := bytes.CutPrefix(b, []byte(recordMagic))
	if !ok {
		return Record{}, errors.New("not a copy record")
	}
	line, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return Record{}, errors.New("truncated copy record")
	}
	var r Record
	var err error
	if r.DiffID, err = v1.NewHash(string(line)); err != nil {
		return Record{}, err
	}
	for len(rest) > 0 {
		var f File
		var t, src []byte
		if t, rest, ok = bytes.Cut(rest, []byte{0}); !ok {
			return Record{}, errors.New("truncated copy record")
		}
		if src, rest, ok = bytes.Cut(rest, []byte{0}); !ok || len(rest) < sha256.Size {
			return Record{}, errors.New("truncated copy record")
		}
		f.Target, f.Source = string(t), string(src)
		f.Sum, rest = [sha256.Size]byte(rest[:sha256.Size]), rest[sha256.Size:]
		r.Files = append(r.Files, f)
	}
	return r, nil
}

// Write replaces the record of lineage k with r: written aside and
// renamed, so that a reader sees the old record or the new one, whole.
// It is not synced: a record lost or damaged in a crash only makes the
// next copy a full one.
func (s *Store) Write(k cache.Key, r Record) error {
	b := append([]byte(recordMagic), r.DiffID.String()+"\n"...)
	for _, f := range r.Files {
		if strings.IndexByte(f.Target, 0) >= 0 || strings.IndexByte(f.Source, 0) >= 0 {
			continue // no file name holds a NUL
		}
		b = append(append(append(append(b, f.Target...), 0), f.Source...), 0)
		b = append(b, f.Sum[:]...)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("write copy record %s: %w", k, err)
	}
	f, err := s.create()
	if err != nil {
		return fmt.Errorf("write copy record %s: %w", k, err)
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.path(k))
	}
	if err != nil {
		return fmt.Errorf("write copy record %s: %w", k, err)
	}
	s.prune(k)
	return nil
}

// prune removes the records, but that of lineage k, whose layer
// directory the root no longer has (or that do not parse).
func (s *Store) prune(k cache.Key) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Name() == k.String() {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		if d, ok := readDiffID(p); !ok || !s.has(d) {
			_ = os.Remove(p) // only a record: one left is tried again next time
		}
	}
}

// readDiffID reads the layer's diffID from the start of the record file
// p.
func readDiffID(p string) (v1.Hash, bool) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, false
	}
	defer f.Close()
	b := make([]byte, len(recordMagic)+len("sha256:")+64+1)
	if _, err := io.ReadFull(f, b); err != nil {
		return v1.Hash{}, false
	}
	r, err := parse(b)
	return r.DiffID, err == nil
}

// Link hard-links into the empty directory upper the regular files of the
// layer directory from that r places from a source file that want accepts
// (the last placement of each target counts), each at its target, making
// their parent directories as from has them (mode, owner, extended
// attributes, overlay opaqueness, modification time). A file whose
// target or inode is already linked, or that from does not hold as a
// regular file under directories, is left out. It returns the files
// linked, by target, for buildctx.NewKeep.
func Link(ctx context.Context, from, upper string, r Record, want func(source string) bool) (map[string]buildctx.Prior, error) {
	last := make(map[string]string, len(r.Files))
	for _, p := range r.Files {
		last[p.Target] = p.Source
	}
	l := linker{from: from, upper: upper, made: map[string]bool{".": true}, inodes: map[uint64]bool{}, pre: map[string]buildctx.Prior{}}
	// The files to link, by directory, in the order they come.
	byDir := map[string][]linkFile{}
	var dirs []string
	for _, p := range r.Files {
		t := p.Target
		if last[t] != p.Source || !want(p.Source) || !local(t) {
			continue
		}
		delete(last, t) // a target placed twice with one source: once
		d := path.Dir(t)
		if _, ok := byDir[d]; !ok {
			dirs = append(dirs, d)
		}
		byDir[d] = append(byDir[d], linkFile{name: path.Base(t), sum: p.Sum})
	}
	var todo []string
	for _, d := range dirs {
		if l.parents(d) {
			todo = append(todo, d)
		}
	}
	// Links into different directories take different locks: two
	// goroutines make them at once.
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(todo) || errs[w] != nil {
					return
				}
				if errs[w] = ctx.Err(); errs[w] == nil {
					errs[w] = l.linkDir(todo[i], byDir[todo[i]])
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("link from %s: %w", from, err)
	}
	if err := l.finish(); err != nil {
		return nil, fmt.Errorf("link from %s: %w", from, err)
	}
	return l.pre, nil
}

// linkFile is a file to link: its name in its directory and the sha256
// of its contents.
type linkFile struct {
	name string
	sum  [sha256.Size]byte
}

// local reports whether t is a clean relative slash path that stays
// where it is joined (a record is read from disk: nothing it says may
// lead out of from or upper).
func local(t string) bool {
	return t != "" && path.Clean(t) == t && filepath.IsLocal(t) && !strings.Contains(t, "\\")
}

// linker does Link's work.
type linker struct {
	from, upper string
	made        map[string]bool // directories made in upper (or found not to be in from: false)
	dirs        []dirMeta       // in the order made

	mu     sync.Mutex
	inodes map[uint64]bool // inodes linked
	pre    map[string]buildctx.Prior
}

// dirMeta is a directory made in upper, with the time to give it once
// everything is linked in it.
type dirMeta struct {
	rel   string
	mtime unix.Timespec
}

// linkDir links the files of from's directory d (made in upper) that
// from holds as regular files, each once.
func (l *linker) linkDir(d string, files []linkFile) error {
	src, err := openDir(filepath.Join(l.from, d))
	if err != nil {
		return err
	}
	defer unix.Close(src)
	dst, err := openDir(filepath.Join(l.upper, d))
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	for _, f := range files {
		var st unix.Stat_t
		if err := unix.Fstatat(src, f.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return &os.PathError{Op: "lstat", Path: filepath.Join(l.from, d, f.name), Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || !l.claim(st.Ino) {
			continue
		}
		if err := unix.Linkat(src, f.name, dst, f.name, 0); err != nil {
			return &os.PathError{Op: "link", Path: filepath.Join(l.from, d, f.name), Err: err}
		}
		l.mu.Lock()
		l.pre[path.Join(d, f.name)] = buildctx.Prior{Dev: st.Dev, Ino: st.Ino, Sum: f.sum}
		l.mu.Unlock()
	}
	return nil
}

// claim reports whether the inode ino is not linked yet, and notes it.
func (l *linker) claim(ino uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inodes[ino] {
		return false
	}
	l.inodes[ino] = true
	return true
}

// openDir opens the directory p.
func openDir(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}

// parents makes the directory d (relative, "." for the top) and its
// parents in upper as from has them; false when from does not have them
// all as directories.
func (l *linker) parents(d string) bool {
	if made, ok := l.made[d]; ok {
		return made
	}
	ok := l.parents(path.Dir(d)) && l.mkdir(d) == nil
	l.made[d] = ok
	return ok
}

// mkdir makes upper's directory d as from's.
func (l *linker) mkdir(d string) error {
	src, dst := filepath.Join(l.from, d), filepath.Join(l.upper, d)
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if err := unix.Mkdir(dst, 0o700); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil { // after chown, which clears setgid
		return err
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	l.dirs = append(l.dirs, dirMeta{rel: d, mtime: st.Mtim})
	return nil
}

// finish gives the directories made their times, deepest first, now that
// nothing more is linked in them.
func (l *linker) finish() error {
	for i := len(l.dirs) - 1; i >= 0; i-- {
		d := l.dirs[i]
		p := filepath.Join(l.upper, d.rel)
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{d.mtime, d.mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "utimes", Path: p, Err: err}
		}
	}
	return nil
}

// copyXattrs copies the extended attributes of the directory src to dst:
// all but overlayfs's own (trusted.overlay.*, or user.overlay.* in a user
// namespace), of which only opaque (a directory that hides the lower
// layers' one) is the layer's.
func copyXattrs(src, dst string) error {
	sz, err := unix.Llistxattr(src, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return err
	}
	buf := make([]byte, sz)
	if sz, err = unix.Llistxattr(src, buf); err != nil {
		return err
	}
	for name := range strings.SplitSeq(string(buf[:sz]), "\x00") {
		if name == "" || (overlayXattr(name) && !strings.HasSuffix(name, ".overlay.opaque")) {
			continue
		}
		n, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return err
		}
		v := make([]byte, n)
		if n, err = unix.Lgetxattr(src, name, v); err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, v[:n], 0); err != nil {
			return err
		}
	}
	return nil
}

// overlayXattr reports whether name is one of overlayfs's attributes.
func overlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// Stale reports whether a file that Link put in upper (pre) is still
// there, neither kept by the copy (k) nor replaced: the copy did not
// write its target, so a full copy would not have it.
func Stale(upper string, pre map[string]buildctx.Prior, k *buildctx.Keep) bool {
	for t, p := range pre {
		if k.Kept(t) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, t), &st); err == nil && st.Dev == p.Dev && st.Ino == p.Ino {
			return true
		}
	}
	return false
}

// Clear empties the directory dir.
func Clear(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
