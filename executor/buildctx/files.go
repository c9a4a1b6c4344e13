package buildctx

import (
	"context"
	"encoding/hex"
	"io/fs"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// File is one file, directory or link that a copy source copies, as
// DigestFiles describes it.
type File struct {
	// Path is relative to the context, slash-separated: the source's
	// match joined with the file's path under it ("src/a.txt").
	Path string `json:"path"`
	// Type is "file", "dir" or "link".
	Type string `json:"type"`
	// Mode holds the permission, setuid, setgid and sticky bits, in their
	// Unix places (0 for links, and for a copied directory's own entry).
	Mode uint32 `json:"mode,omitempty"`
	// Digest is the sha256 of a regular file's contents.
	Digest string `json:"digest,omitempty"`
	// Link is a symbolic link's target.
	Link string `json:"link,omitempty"`
}

// DigestFiles returns what Digest returns, from the same walk, and the
// files that make it up, in the order the digest covers them: what tells
// which file of a copy source changed between two builds.
func (c *Context) DigestFiles(ctx context.Context, src string) (v1.Hash, []File, error) {
	d, ms, walks, err := c.digest(ctx, src)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	var files []File
	for i, m := range ms {
		for _, en := range walks[i] {
			f := File{Path: path.Join(m.name, en.rel)}
			mode := en.fi.Mode()
			switch {
			case mode.IsRegular():
				f.Type, f.Mode = "file", modeBits(mode)
				f.Digest = "sha256:" + hex.EncodeToString(en.sum[:])
			case mode.IsDir():
				f.Type = "dir"
				if en.rel != "." {
					f.Mode = modeBits(mode)
				}
			case mode&fs.ModeSymlink != 0:
				f.Type, f.Link = "link", en.link
			}
			files = append(files, f)
		}
	}
	return d, files, nil
}
