package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/layer"
)

// blobLayer is a cached layer: a blob of the store whose streams verify it.
type blobLayer struct {
	path   string
	desc   v1.Descriptor
	diffID v1.Hash
}

var (
	_ v1.Layer            = (*blobLayer)(nil)
	_ partial.Describable = (*blobLayer)(nil)
)

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Descriptor returns the layer's descriptor as the record has it.
func (l *blobLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

// Compressed returns the blob's bytes. Reading them to the end fails,
// naming the digest, if they do not hash to it.
func (l *blobLayer) Compressed() (io.ReadCloser, error) { return l.open() }

// Uncompressed decompresses the blob according to its first bytes (gzip with
// pgzip, zstd, or none), verifying the compressed bytes as Compressed does.
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	vr, err := l.open()
	if err != nil {
		return nil, err
	}
	dr, err := layer.Decompress(vr)
	if err != nil {
		vr.Close()
		return nil, fmt.Errorf("open layer %s: %w: %w", l.desc.Digest, ErrCorrupt, err)
	}
	return &readCloser{
		Reader: &corruptReader{r: dr, digest: l.desc.Digest},
		close:  func() error { return errors.Join(dr.Close(), vr.Close()) },
	}, nil
}

// corruptReader reads a decompressed blob: a failure to decompress means
// that the blob is corrupt.
type corruptReader struct {
	r      io.Reader
	digest v1.Hash
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("layer blob %s: %w: %w", c.digest, ErrCorrupt, err)
	}
	return n, err
}

func (l *blobLayer) open() (*verifyReader, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("open layer %s: %w: %w", l.desc.Digest, ErrCorrupt, err)
	}
	return &verifyReader{f: f, h: sha256.New(), want: l.desc.Digest, size: l.desc.Size}, nil
}

// verifyReader reads a blob, failing at its end (or as soon as it is too
// long) if it does not have the size and digest wanted.
type verifyReader struct {
	f    *os.File
	h    hash.Hash
	n    int64
	want v1.Hash
	size int64
	err  error // sticky, once the end is reached
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		v.err = fmt.Errorf("layer blob %s: %w: more than %d bytes", v.want, ErrCorrupt, v.size)
		return 0, v.err
	}
	if errors.Is(err, io.EOF) {
		got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(v.h.Sum(nil))}
		switch {
		case v.n != v.size:
			v.err = fmt.Errorf("layer blob %s: %w: %d bytes, want %d", v.want, ErrCorrupt, v.n, v.size)
		case got != v.want:
			v.err = fmt.Errorf("layer blob %s: %w: content has digest %s", v.want, ErrCorrupt, got)
		default:
			v.err = io.EOF
		}
		if v.err != io.EOF {
			return 0, v.err // the bytes of p cannot be trusted either
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.f.Close() }

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }
