package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/platform"
)

// ImportOptions configures Import.
type ImportOptions struct {
	// Created is the image's creation time, and no timestamp in its layer is
	// later. The default (the zero Time) is the Unix epoch, which makes the
	// import of a directory reproducible.
	Created time.Time
	// Config is the image's runtime configuration (Env, Cmd, Entrypoint,
	// WorkingDir, User, Labels, …); it is copied as it is.
	Config v1.Config
	// Platform, when given, is the image's platform (its config's os,
	// architecture and variant) and the import adds the image to the
	// index named name, replacing that platform's image (see
	// Store.TagPlatform), so that one name serves several platforms.
	Platform platform.Platform
}

// Import makes an image of one layer from src and names it name. src is a
// directory, archived with layer.WriteDir, or a tar file, plain or compressed
// with gzip or zstd (told apart by their first bytes).
//
// A tar file is rewritten entry by entry, in its own order (entries are not
// sorted): names lose a leading "/" or "./" and the root entry is dropped,
// user and group names, access and change times and global PAX headers are
// left out, and modification times later than Created become Created and are
// rounded to the second. Ownership, modes, link targets and other PAX records
// (extended attributes) are kept.
//
// The image uses OCI media types; its config has os linux, the architecture
// kiln runs on, Created, one history entry "kiln import", and opts.Config.
// The same input and options give the same manifest digest.
func (s *Store) Import(ctx context.Context, src string, name string, opts ImportOptions) (v1.Hash, error) {
	n, err := normalizeTag(name)
	if err != nil {
		return v1.Hash{}, err
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	fi, err := os.Stat(src)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("import %s: %w", src, err)
	}
	var write func(w io.Writer) error
	if fi.IsDir() {
		write = func(w io.Writer) error {
			return layer.WriteDir(ctx, w, src, layer.WithSourceDateEpoch(created))
		}
	} else {
		write = func(w io.Writer) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			r, err := decompress(f)
			if err != nil {
				f.Close()
				return err
			}
			defer r.Close()
			return normalizeTar(ctx, w, r, created)
		}
	}
	l, err := s.WriteLayer(ctx, write)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("import %s: %w", src, err)
	}
	layerDesc, _ := l.(*storeLayer).Descriptor()
	diffID, _ := l.DiffID()

	cf := v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Variant:      opts.Platform.Variant,
		Created:      v1.Time{Time: created},
		Config:       opts.Config,
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		History:      []v1.History{{Created: v1.Time{Time: created}, CreatedBy: "kiln import"}},
	}
	if !opts.Platform.IsZero() {
		cf.OS, cf.Architecture = opts.Platform.OS, opts.Platform.Arch
	}
	rawConfig, err := json.Marshal(cf)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("import %s: %w", src, err)
	}
	configDigest, configSize, err := v1.SHA256(bytes.NewReader(rawConfig))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("import %s: %w", src, err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: configSize, Digest: configDigest},
		Layers:        []v1.Descriptor{*layerDesc},
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("import %s: %w", src, err)
	}
	img := &storeImage{
		desc:        v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(rawManifest))},
		rawManifest: rawManifest,
		manifest:    &m,
		rawConfig:   rawConfig,
		config:      &cf,
		layers:      []*storeLayer{l.(*storeLayer)},
	}
	img.desc.Digest, _, _ = v1.SHA256(bytes.NewReader(rawManifest))
	tag := s.Tag
	if !opts.Platform.IsZero() {
		tag = s.TagPlatform
	}
	d, err := tag(ctx, img, n)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("import %s: %w", src, err)
	}
	return d, nil
}

// normalizeTar copies the tar r reads to w as Import documents.
func normalizeTar(ctx context.Context, w io.Writer, r io.Reader, epoch time.Time) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name := cleanTarName(h.Name)
		if name == "" {
			continue
		}
		if h.Typeflag == tar.TypeDir {
			name += "/"
		}
		mtime := h.ModTime
		if mtime.After(epoch) {
			mtime = epoch
		}
		out := &tar.Header{
			Typeflag: h.Typeflag,
			Name:     name,
			Linkname: h.Linkname,
			Size:     h.Size,
			Mode:     h.Mode,
			Uid:      h.Uid,
			Gid:      h.Gid,
			ModTime:  mtime.Truncate(time.Second),
			Devmajor: h.Devmajor,
			Devminor: h.Devminor,
		}
		if h.Typeflag == tar.TypeLink {
			out.Linkname = cleanTarName(h.Linkname)
		}
		for k, v := range h.PAXRecords {
			if keepPAXRecord(k) {
				if out.PAXRecords == nil {
					out.PAXRecords = map[string]string{}
				}
				out.PAXRecords[k] = v
			}
		}
		if err := tw.WriteHeader(out); err != nil {
			return fmt.Errorf("write tar entry %s: %w", name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copy tar entry %s: %w", name, err)
		}
	}
	return tw.Close()
}

// cleanTarName returns a tar entry name relative to the root, without a
// leading "/" or "./" or a trailing "/"; "" for the root itself.
func cleanTarName(n string) string {
	n = path.Clean("/" + n)
	return strings.TrimPrefix(n, "/")
}

// keepPAXRecord reports whether a PAX record carries something that the
// header's own fields do not (extended attributes, ACLs, …).
func keepPAXRecord(k string) bool {
	switch k {
	case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime", "comment", "charset", "hdrcharset":
		return false
	}
	return !strings.HasPrefix(k, "GNU.sparse.")
}
