package cache

import (
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/kiln-build/kiln/image/store"
)

// blobLayer is a cached layer: a blob of the store whose streams verify
// it (store.Store.BlobLayer), their errors wrapping ErrCorrupt when the
// blob cannot be read or does not match.
type blobLayer struct {
	v1.Layer
	desc v1.Descriptor
}

var _ partial.Describable = (*blobLayer)(nil)

// Descriptor returns the layer's descriptor as the record has it.
func (l *blobLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

// Compressed returns the blob's bytes. Reading them to the end fails,
// naming the digest, if they do not hash to it.
func (l *blobLayer) Compressed() (io.ReadCloser, error) { return l.wrap(l.Layer.Compressed()) }

// Uncompressed decompresses the blob according to its first bytes (gzip with
// pgzip, zstd, or none), verifying the compressed bytes as Compressed does.
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return l.wrap(l.Layer.Uncompressed()) }

func (l *blobLayer) wrap(rc io.ReadCloser, err error) (io.ReadCloser, error) {
	if err != nil {
		return nil, l.corrupt(err)
	}
	return &readCloser{Reader: &corruptReader{r: rc, l: l}, close: rc.Close}, nil
}

// corrupt wraps err, a failure to read the blob, with ErrCorrupt.
func (l *blobLayer) corrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	var cbe *store.CorruptBlobError
	if errors.As(err, &cbe) {
		return corruptError{err} // it names the blob already
	}
	return fmt.Errorf("layer blob %s: %w: %w", l.desc.Digest, ErrCorrupt, err)
}

// corruptReader reads a blob, or what it decompresses to: a failure to
// read it to its end means that the blob is corrupt.
type corruptReader struct {
	r io.Reader
	l *blobLayer
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = c.l.corrupt(err)
	}
	return n, err
}

// corruptError is an error that says it all and also wraps ErrCorrupt.
type corruptError struct{ err error }

func (e corruptError) Error() string   { return e.err.Error() }
func (e corruptError) Unwrap() []error { return []error{e.err, ErrCorrupt} }

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }
