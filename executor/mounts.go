package executor

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/container"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/internal/flock"
	"github.com/kiln-build/kiln/internal/regfile"
	"github.com/kiln-build/kiln/manifest"
)

// This file holds what a Dockerfile needs of the executor beyond the
// YAML manifests: run mounts (cache, secret, bind, tmpfs, inline files),
// per-step networks and env, WORKDIR that makes its directory, ADD of
// local archives, and owners given by name.

// runEnv returns env with kvs set over it.
func runEnv(env []string, kvs []manifest.KV) []string {
	for _, kv := range kvs {
		env = manifest.SetEnv(env, kv.Key+"="+kv.Value)
	}
	return env
}

// stepNetwork is the network a run step gets: its own, or the build's.
// A step cannot have more network than the build allows.
func (r *run) stepNetwork(s *manifest.Step) (engine.Network, error) {
	switch s.Network {
	case "":
		return r.opts.Network, nil
	case "none":
		return engine.NetworkNone, nil
	case "host":
		if r.opts.Network != engine.NetworkHost {
			return "", fmt.Errorf("--network=host needs the build's network to be host (kiln build --network host)")
		}
		return engine.NetworkHost, nil
	}
	return "", fmt.Errorf("unknown network %q: use none or host", s.Network)
}

// mountsKey describes a run step's mounts for its cache key: what they
// are and where, the content of bind sources (a stage's key, or the
// digest of context files) and a secret's ID, never its content.
func (r *run) mountsKey(ctx context.Context, s *manifest.Step) ([]string, error) {
	var out []string
	for _, m := range s.Mounts {
		k := []string{string(m.Type), m.Target}
		switch m.Type {
		case manifest.MountCache:
			k = append(k, m.ID, m.Sharing, optInt(m.UID), optInt(m.GID), optMode(m.Mode))
		case manifest.MountSecret:
			k = append(k, m.ID, m.Env, optInt(m.UID), optInt(m.GID), optMode(m.Mode), strconv.FormatBool(m.Required))
		case manifest.MountTmpfs:
			k = append(k, strconv.FormatInt(m.Size, 10))
		case manifest.MountFile:
			k = append(k, m.Data, optMode(m.Mode))
		case manifest.MountBind:
			k = append(k, m.From, m.Source, strconv.FormatBool(m.ReadWrite))
			if m.From != "" {
				src := r.state(r.g.Last(m.From))
				if src == nil {
					return nil, fmt.Errorf("stage %q left no state", m.From)
				}
				k = append(k, src.key.String())
			} else {
				d, err := r.opts.Context.Digest(ctx, m.Source)
				if err != nil {
					return nil, fmt.Errorf("bind mount of %s: %w", m.Source, err)
				}
				k = append(k, d.String())
			}
		default:
			return nil, fmt.Errorf("unknown mount type %q", m.Type)
		}
		out = append(out, strings.Join(k, "\x00"))
	}
	return out, nil
}

func optInt(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func optMode(p *uint32) string {
	if p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*p), 8)
}

// runMounts prepares a run step's mounts: it returns them, the env they
// add (secrets given as env=) and what to call once the container is
// gone (removing secret files and copies, releasing cache locks).
func (r *run) runMounts(ctx context.Context, s *manifest.Step) (_ []engine.Mount, _ []manifest.KV, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	var mounts []engine.Mount
	var env []manifest.KV
	tmpDir := func(what string) (string, error) {
		if err := os.MkdirAll(r.opts.Tmp, 0o700); err != nil {
			return "", err
		}
		d, err := os.MkdirTemp(r.opts.Tmp, tmpPrefix(what))
		if err != nil {
			return "", err
		}
		undo = append(undo, func() { os.RemoveAll(d) })
		return d, nil
	}
	for _, m := range s.Mounts {
		switch m.Type {
		case manifest.MountCache:
			dir, unlock, err := r.cacheDir(ctx, m)
			if err != nil {
				return nil, nil, cleanup, err
			}
			undo = append(undo, unlock)
			mounts = append(mounts, engine.Mount{Type: "bind", Source: dir, Target: m.Target})
		case manifest.MountSecret:
			data, ok := r.opts.Secrets[m.ID]
			if !ok {
				if m.Required {
					return nil, nil, cleanup, fmt.Errorf("secret %q is required: give it with kiln build --secret id=%s,src=FILE (or env=VAR)", m.ID, m.ID)
				}
				continue
			}
			if m.Env != "" {
				env = append(env, manifest.KV{Key: m.Env, Value: string(data)})
			}
			if m.Target == "" {
				continue
			}
			// In memory only: the runtime puts it on a tmpfs of the
			// step's own mount namespace, never on the host's disk.
			f := memFile(data, m.Mode, 0o400, m.UID, m.GID)
			mounts = append(mounts, engine.Mount{Type: "bind", Target: m.Target, File: f, Options: []string{"ro", "nosuid", "nodev", "noexec"}})
		case manifest.MountFile:
			f := memFile([]byte(m.Data), m.Mode, 0o644, nil, nil)
			mounts = append(mounts, engine.Mount{Type: "bind", Target: m.Target, File: f, Options: []string{"ro"}})
		case manifest.MountTmpfs:
			opts := []string{"nosuid", "nodev"}
			if m.Size > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.Size, 10))
			}
			mounts = append(mounts, engine.Mount{Type: "tmpfs", Source: "tmpfs", Target: m.Target, Options: opts})
		case manifest.MountBind:
			d, err := tmpDir("bind")
			if err != nil {
				return nil, nil, cleanup, err
			}
			src, err := r.bindSource(ctx, m, d)
			if err != nil {
				return nil, nil, cleanup, err
			}
			bm := engine.Mount{Type: "bind", Source: src, Target: m.Target}
			if !m.ReadWrite {
				bm.Options = []string{"ro"}
			}
			mounts = append(mounts, bm)
		default:
			return nil, nil, cleanup, fmt.Errorf("unknown mount type %q", m.Type)
		}
	}
	return mounts, env, cleanup, nil
}

// memFile is a file of a run mount, given to the container: data with
// mode (or def), owned by uid:gid (default 0:0).
func memFile(data []byte, mode *uint32, def os.FileMode, uid, gid *int) *engine.File {
	f := &engine.File{Data: data, Mode: def}
	if mode != nil {
		f.Mode = os.FileMode(*mode & 0o777)
	}
	if uid != nil {
		f.UID = *uid
	}
	if gid != nil {
		f.GID = *gid
	}
	return f
}

// cacheDir returns the directory of a cache mount, under the root's
// cache/mounts, made on first use; locked and private caches are held by
// one step at a time until unlock.
func (r *run) cacheDir(ctx context.Context, m manifest.Mount) (dir string, unlock func(), err error) {
	base := filepath.Join(r.opts.Store.Root(), "cache", "mounts")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, fmt.Errorf("cache mount %s: %w", m.ID, err)
	}
	dir = filepath.Join(base, url.PathEscape(m.ID))
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		tmp, err := os.MkdirTemp(base, ".new-")
		if err != nil {
			return "", nil, fmt.Errorf("cache mount %s: %w", m.ID, err)
		}
		mode := os.FileMode(0o755)
		if m.Mode != nil {
			mode = os.FileMode(*m.Mode & 0o7777)
		}
		u, g := 0, 0
		if m.UID != nil {
			u = *m.UID
		}
		if m.GID != nil {
			g = *m.GID
		}
		err = errors.Join(os.Chown(tmp, u, g), os.Chmod(tmp, mode))
		if err == nil {
			if err = os.Rename(tmp, dir); err != nil && errors.Is(err, os.ErrExist) || isNotEmpty(err) {
				err = nil // made at once by another build
			}
		}
		os.Remove(tmp)
		if err != nil {
			return "", nil, fmt.Errorf("cache mount %s: %w", m.ID, err)
		}
	}
	unlock = func() {}
	if m.Sharing == "locked" || m.Sharing == "private" {
		f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return "", nil, fmt.Errorf("cache mount %s: %w", m.ID, err)
		}
		if err := flock.Exclusive(ctx, f, 50*time.Millisecond); err != nil {
			f.Close()
			if ctx.Err() != nil {
				return "", nil, context.Cause(ctx)
			}
			return "", nil, fmt.Errorf("cache mount %s: locking: %w", m.ID, err)
		}
		unlock = func() { f.Close() }
	}
	return dir, unlock, nil
}

func isNotEmpty(err error) bool { return errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) }

// bindSource makes what a bind mount shows, in dir: a copy of context
// files (with the ignore rules), or the merged tree of a stage; it
// returns the host path to bind.
func (r *run) bindSource(ctx context.Context, m manifest.Mount, dir string) (string, error) {
	if m.From == "" {
		dst := filepath.Join(dir, "m")
		if err := r.opts.Context.Copy(ctx, m.Source, dir, "/m", buildctx.CopyOptions{}); err != nil {
			return "", fmt.Errorf("bind mount of %s: %w", m.Source, err)
		}
		return dst, nil
	}
	src := r.state(r.g.Last(m.From))
	if src == nil {
		return "", fmt.Errorf("stage %q left no state", m.From)
	}
	tree := filepath.Join(dir, "tree")
	if err := layer.Merge(ctx, tree, src.dirs); err != nil {
		return "", fmt.Errorf("bind mount from %s: %w", m.From, err)
	}
	real, err := inRoot(tree, m.Source)
	if err != nil {
		return "", fmt.Errorf("bind mount from %s: %s: %w", m.From, m.Source, err)
	}
	return real, nil
}

// inRoot returns the host path of p, a path of the root filesystem at
// root, with its links resolved as if root were "/" (as the stage's own
// steps see them), never on the host.
func inRoot(root, p string) (string, error) {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	if root, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(dfd)); err != nil {
		return "", err
	}
	fd, err := unix.Openat2(dfd, path.Clean("/"+p), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
		return "", fmt.Errorf("%s resolves to %s, outside %s", p, real, root)
	}
	return real, nil
}

// makeWorkdir makes the config's working directory, with its missing
// parents, owned by the config's user, as a Dockerfile's WORKDIR does.
func (r *run) makeWorkdir(ctx context.Context, mounts []engine.Mount, st *fsState) error {
	empty, err := os.MkdirTemp(r.opts.Tmp, tmpPrefix("empty"))
	if err != nil {
		return err
	}
	defer os.Remove(empty)
	if err := os.Chmod(empty, 0o755); err != nil {
		return err
	}
	return container.Mounted(r.opts.Tmp, [][]engine.Mount{mounts}, func(roots []string) error {
		var o buildctx.CopyOptions
		if u := st.config.User; u != "" {
			uid, gid, err := lookupOwner(roots[0], u, false)
			if err != nil {
				return fmt.Errorf("user %q: %w", u, err)
			}
			o.UID, o.GID = uid, gid
		}
		return buildctx.CopyTree(ctx, empty, ".", roots[0], strings.TrimSuffix(st.config.WorkingDir, "/")+"/", o)
	})
}

// writeInline writes a copy's inline files into a new directory.
func writeInline(tmp string, files []manifest.InlineFile) (string, error) {
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", err
	}
	d, err := os.MkdirTemp(tmp, tmpPrefix("inline"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		name := path.Base(path.Clean("/" + f.Name))
		if name == "/" || name == "." || name == ".." {
			os.RemoveAll(d)
			return "", fmt.Errorf("inline file %q: not a file name", f.Name)
		}
		if err := os.WriteFile(filepath.Join(d, name), []byte(f.Data), 0o644); err != nil {
			os.RemoveAll(d)
			return "", err
		}
		if err := os.Chmod(filepath.Join(d, name), 0o644); err != nil {
			os.RemoveAll(d)
			return "", err
		}
	}
	return d, nil
}

// resolveOwner looks a copy's owner names up in the destination root's
// /etc/passwd and /etc/group.
func resolveOwner(root string, s *manifest.Step, o *buildctx.CopyOptions) error {
	if s.Kind != manifest.StepCopy || s.Copy.Own == "" {
		return nil
	}
	uid, gid, err := lookupOwner(root, s.Copy.Own, true)
	if err != nil {
		return fmt.Errorf("--chown=%s: %w", s.Copy.Own, err)
	}
	o.UID, o.GID = uid, gid
	return nil
}

// lookupOwner resolves "user[:group]" (names or numbers) in root. A user
// alone gets its primary group from /etc/passwd, or, when numeric and
// sameGID, a group of the same number (as COPY --chown=1000 does).
func lookupOwner(root, owner string, sameGID bool) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(owner, ":")
	uid, uerr := strconv.Atoi(u)
	primary := 0
	if uerr != nil || !hasGroup && !sameGID {
		e, err := dbLookup(root, "/etc/passwd", u, uerr == nil)
		if err != nil {
			if uerr == nil {
				e = nil // a numeric user need not be in /etc/passwd
			} else {
				return 0, 0, err
			}
		}
		if e != nil {
			uid, _ = strconv.Atoi(e[2])
			primary, _ = strconv.Atoi(e[3])
		}
	} else if !hasGroup {
		primary = uid
	}
	if !hasGroup {
		return uid, primary, nil
	}
	if gid, err := strconv.Atoi(g); err == nil {
		return uid, gid, nil
	}
	e, err := dbLookup(root, "/etc/group", g, false)
	if err != nil {
		return 0, 0, err
	}
	gid, _ = strconv.Atoi(e[2])
	return uid, gid, nil
}

// maxDBSize bounds the /etc/passwd or /etc/group kiln reads of an image.
const maxDBSize = 16 << 20

// dbLookup finds the entry of name (or of the number, byID) in a
// passwd-style file of root, read without leaving root; a file that is
// not a regular one (a FIFO would block kiln) is refused.
func dbLookup(root, file, name string, byID bool) ([]string, error) {
	data, err := regfile.ReadInRoot(root, file, maxDBSize)
	if err != nil {
		return nil, fmt.Errorf("looking up %q: %w", name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		if byID && f[2] == name || !byID && f[0] == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no %q in %s", name, file)
}

// addFromContext is ADD of context files: a local tar archive (plain,
// gzip, bzip2, xz or zstd) is unpacked into dst, anything else copied as
// COPY does. Unpacked files keep their modes and times, and the owners
// the archive records unless chowned (--chown), as BuildKit does.
func (r *run) addFromContext(ctx context.Context, src, root, dst string, opts buildctx.CopyOptions, chowned bool) error {
	names, err := r.opts.Context.Resolve(src)
	if err != nil {
		return err
	}
	var archives []string
	for _, n := range names {
		ok, err := isArchive(r.opts.Context.Dir(), n)
		if err != nil {
			return err
		}
		if ok {
			archives = append(archives, n)
		}
	}
	if len(archives) == 0 {
		return r.opts.Context.Copy(ctx, src, root, dst, opts)
	}
	for _, n := range names {
		if !containsStr(archives, n) {
			if err := r.opts.Context.Copy(ctx, n, root, dst, opts); err != nil {
				return err
			}
			continue
		}
		xo := opts
		xo.KeepOwner = !chowned
		// An unpacked archive keeps its modes: BuildKit's unpack passes
		// no --chmod (solver/llbsolver/file/unpack.go:45-57).
		xo.Mode, xo.ModeDirs = nil, false
		if err := r.extract(ctx, r.opts.Context.Dir(), n, root, dst, xo); err != nil {
			return fmt.Errorf("unpacking %s: %w", n, err)
		}
	}
	return nil
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// isArchive reports whether the file name of the context dir is a tar
// archive, maybe compressed with gzip, bzip2, xz or zstd. Its links are
// resolved inside dir, as the copy resolves them.
func isArchive(dir, name string) (bool, error) {
	f, err := regfile.OpenInRoot(dir, name)
	if errors.Is(err, regfile.ErrNotRegular) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	rd, err := decompress(f)
	if err != nil {
		return false, nil
	}
	defer rd.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(rd, head)
	return n >= 262 && string(head[257:262]) == "ustar", nil
}

// decompress wraps r in a gzip, bzip2, xz or zstd reader when it starts
// with their magic.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(xr), nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// extract unpacks the archive name of the context dir into a directory of
// its own, safely, then copies that tree into root at dst.
func (r *run) extract(ctx context.Context, dir, name, root, dst string, opts buildctx.CopyOptions) error {
	f, err := regfile.OpenInRoot(dir, name)
	if err != nil {
		return err
	}
	defer f.Close()
	rd, err := decompress(f)
	if err != nil {
		return err
	}
	defer rd.Close()
	d, err := os.MkdirTemp(r.opts.Tmp, tmpPrefix("add"))
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	tree := filepath.Join(d, "tree")
	if err := layer.Extract(ctx, rd, tree); err != nil {
		return err
	}
	if !strings.HasSuffix(dst, "/") {
		dst += "/"
	}
	return buildctx.CopyTree(ctx, tree, ".", root, dst, opts)
}
