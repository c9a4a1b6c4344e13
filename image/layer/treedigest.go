package layer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// TreeDigests are two digests of a layer directory, from [DigestTree].
type TreeDigests struct {
	// Tree covers what a container sees: every entry's relative name,
	// type and mode bits, owner, size, modification time, device number,
	// link target, extended attributes (trusted.overlay.* included) and,
	// for a regular file, the sha256 of its content.
	Tree v1.Hash `json:"tree"`
	// Meta covers the same entries by their inode metadata only: inode
	// number, mode, owner, size, link count, device number and the
	// modification and change times (the top directory's change time
	// left out: the store bumps it to mark a layer used; and a whiteout's
	// link count and change time, which overlayfs moves). Writing a file,
	// its attributes or the directory's entries changes a change time that
	// no one can set back, so a Meta that matches is a cheap proof that
	// the tree is as it was; a copy or restore of the directory changes it
	// without changing Tree.
	Meta v1.Hash `json:"meta"`
}

// DigestTree walks dir and returns its digests. With content false it
// only lstats (Meta); Tree is then the zero Hash.
func DigestTree(ctx context.Context, dir string, content bool) (TreeDigests, error) {
	tree, meta := sha256.New(), sha256.New()
	var x xattrReader
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		ctime, nlink := st.Ctim.Nano(), uint64(st.Nlink)
		if rel == "." {
			ctime = 0
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			// An overlay whiteout: overlayfs makes them as links to one
			// inode of its workdir, whose link count and change time move
			// as snapshots come and go. It holds nothing else to change.
			ctime, nlink = 0, 0
		}
		field(meta, rel, st.Ino, st.Mode, st.Uid, st.Gid, st.Size, nlink, st.Rdev, st.Mtim.Nano(), ctime)
		if !content {
			return nil
		}
		field(tree, rel, st.Mode, st.Uid, st.Gid, st.Size, st.Rdev, st.Mtim.Nano())
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			field(tree, "link", target)
		case unix.S_IFREG:
			sum, err := fileDigest(p, buf)
			if err != nil {
				return err
			}
			field(tree, "content", sum)
		}
		names, err := x.names(p)
		if err != nil {
			return err
		}
		for name := range strings.SplitSeq(names, "\x00") {
			if name == "" {
				continue
			}
			v, err := x.get(p, name)
			if err != nil {
				return err
			}
			field(tree, "xattr", name, v)
		}
		return nil
	})
	if err != nil {
		return TreeDigests{}, fmt.Errorf("digest tree %s: %w", dir, err)
	}
	d := TreeDigests{Meta: hashSum(meta)}
	if content {
		d.Tree = hashSum(tree)
	}
	return d, nil
}

// fileDigest returns the hex sha256 of the regular file p, opened
// without following links and without blocking.
func fileDigest(p string, buf []byte) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// field writes the values, each length-prefixed, to h.
func field(h hash.Hash, vals ...any) {
	var n [8]byte
	for _, v := range vals {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case uint32:
			s = strconv.FormatUint(uint64(v), 10)
		case uint64:
			s = strconv.FormatUint(v, 10)
		case int64:
			s = strconv.FormatInt(v, 10)
		default:
			panic(fmt.Sprintf("field: %T", v))
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
}

func hashSum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}
