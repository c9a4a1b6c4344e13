package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/internal/atomicfile"
)

// WriteLayer stores the layer that write produces. write must write an
// uncompressed layer tar to w. In one pass over it, WriteLayer computes the
// diffID (sha256 of the tar), compresses it with pgzip at the default level,
// computes the digest (sha256 of the compressed bytes) and writes the
// compressed bytes to a file in tmp/, which it then syncs and renames to
// oci/blobs/sha256/<digest> (or drops, if that blob exists already).
//
// The returned layer reads that blob file; its media type is
// types.OCILayer. It stays unreferenced, and so collectable after GCGrace,
// until an image that contains it is tagged.
func (s *Store) WriteLayer(ctx context.Context, write func(w io.Writer) error) (v1.Layer, error) {
	return s.writeLayer(ctx, Gzip, write, v1.Hash{})
}

// writeLayer is WriteLayer with the compression c: Gzip with pgzip, Zstd
// with klauspost/compress/zstd at its default level (types.OCILayerZStd).
// A non-zero diffID is the tar's, known already: it is not hashed again.
func (s *Store) writeLayer(ctx context.Context, c Compression, write func(w io.Writer) error, diffID v1.Hash) (v1.Layer, error) {
	f, err := s.createTemp()
	if err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // fails harmlessly once renamed
	}()

	digester := sha256.New()
	counter := &countWriter{}
	buf := bufio.NewWriterSize(io.MultiWriter(f, digester, counter), 1<<20)
	zw, mt, err := c.writer(buf)
	if err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	differ := sha256.New()
	w := &ctxWriter{ctx: ctx, w: zw}
	if diffID == (v1.Hash{}) {
		w.w = io.MultiWriter(zw, differ)
	}
	if err := write(w); err != nil {
		zw.Close()
		return nil, fmt.Errorf("write layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("write layer: compress: %w", err)
	}
	if err := buf.Flush(); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	d := hashOf(digester)
	if err := s.commitTemp(f, d); err != nil {
		return nil, fmt.Errorf("write layer %s: %w", d, err)
	}
	if diffID == (v1.Hash{}) {
		diffID = hashOf(differ)
	}
	return &storeLayer{
		path:   s.BlobPath(d),
		desc:   v1.Descriptor{MediaType: mt, Size: counter.n, Digest: d},
		diffID: diffID,
	}, nil
}

// commitTemp syncs and closes f, a temp file holding the blob d, and renames it
// into the blobs directory; if the blob exists already it only touches it.
func (s *Store) commitTemp(f *os.File, d v1.Hash) error {
	dst := s.BlobPath(d)
	if touch(dst) == nil {
		return f.Close()
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

// putBlob stores the blob that r reads, unless a blob with digest want exists
// already (which it then touches). When want is the zero Hash the digest is
// only known at the end; putBlob returns the digest it computed, and fails if
// it differs from a non-zero want.
func (s *Store) putBlob(ctx context.Context, want v1.Hash, open func() (io.ReadCloser, error)) (v1.Hash, error) {
	if want != (v1.Hash{}) && touch(s.BlobPath(want)) == nil {
		return want, nil
	}
	rc, err := open()
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	f, err := s.createTemp()
	if err != nil {
		return v1.Hash{}, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), &ctxReader{ctx: ctx, r: rc}); err != nil {
		return v1.Hash{}, err
	}
	if err := rc.Close(); err != nil { // a stream.Layer computes its digest on Close
		return v1.Hash{}, err
	}
	got := hashOf(h)
	if want != (v1.Hash{}) && got != want {
		return v1.Hash{}, fmt.Errorf("blob %s: content has digest %s", want, got)
	}
	return got, s.commitTemp(f, got)
}

// PutBlob stores the blob of digest d that open reads, unless the store
// has it already (PutBlob then only refreshes its modification time). It
// fails, keeping nothing, when the bytes read do not hash to d. The blob
// stays unreferenced, and so collectable after GCGrace, until an image is
// tagged or a reference (Ref) names it.
func (s *Store) PutBlob(ctx context.Context, d v1.Hash, open func() (io.ReadCloser, error)) error {
	if d == (v1.Hash{}) {
		return errors.New("put blob: no digest given")
	}
	if _, err := s.putBlob(ctx, d, open); err != nil {
		return fmt.Errorf("put blob %s: %w", d, err)
	}
	return nil
}

// BlobPath is the file that holds blob h, whether or not it exists; its
// content is h's. Callers only read it: blobs are written through
// PutBlob and WriteLayer.
func (s *Store) BlobPath(h v1.Hash) string {
	return filepath.Join(s.ociDir(), "blobs", h.Algorithm, h.Hex)
}

// touch sets the modification time of an existing file to now, which keeps a
// blob from being collected for GCGrace.
func touch(p string) error {
	now := time.Now()
	return os.Chtimes(p, now, now)
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// storeLayer is a layer whose compressed form is a blob file of the store.
type storeLayer struct {
	path   string
	desc   v1.Descriptor // as the manifest has it
	diffID v1.Hash
	at     string // "" for the store's blobs, else "oci-layout DIR"
	// store, for the store's blobs, writes the tar of a layer that it
	// keeps as its directory only (CommitLayerDir) when it is read.
	store *Store
}

var _ partial.Describable = (*storeLayer)(nil)

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Descriptor returns the layer's descriptor as the manifest has it (or, from
// WriteLayer, with no annotations; see the validate.Image caveat of
// go-containerregistry's tarball layers).
func (l *storeLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

// Compressed returns the blob's bytes. Reading them to the end fails with
// a *CorruptBlobError if they do not hash to the layer's digest.
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	return l.open()
}

func (l *storeLayer) open() (*digestReader, error) {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) && l.store != nil {
		if rc, ok := l.store.dirTar(l.desc.Digest); ok {
			return blobReader(rc, "layer directory", l.desc.Digest, l.desc.Size, ""), nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open layer %s: %w", l.desc.Digest, err)
	}
	what := "blob"
	if l.at != "" {
		what = "layer"
	}
	return blobReader(f, what, l.desc.Digest, l.desc.Size, l.at), nil
}

// Uncompressed decompresses the blob according to its first bytes: gzip (with
// pgzip, which reads ahead on other cores), zstd, or none. Reading it to the
// end, or a failure to decompress, checks the blob as Compressed does.
func (l *storeLayer) Uncompressed() (io.ReadCloser, error) {
	vr, err := l.open()
	if err != nil {
		return nil, err
	}
	rc, err := checkedDecompress(vr)
	if err != nil {
		vr.Close()
		return nil, fmt.Errorf("open layer %s: %w", l.desc.Digest, err)
	}
	return rc, nil
}

// decompress is layer.Decompress, closing r too.
func decompress(r io.ReadCloser) (io.ReadCloser, error) {
	dr, err := layer.Decompress(r)
	if err != nil {
		return nil, err
	}
	return &readCloser{Reader: dr, close: func() error { return errors.Join(dr.Close(), r.Close()) }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// ctxWriter fails writes once ctx is done, so that a long stream stops.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// BlobLayer returns the layer whose compressed form is the store's blob
// desc.Digest, with the diffID given. Its streams verify the blob as an
// image's layers do: reading to the end fails with a *CorruptBlobError when
// the bytes do not hash to the digest.
func (s *Store) BlobLayer(desc v1.Descriptor, diffID v1.Hash) v1.Layer {
	return &storeLayer{path: s.BlobPath(desc.Digest), desc: desc, diffID: diffID, store: s}
}
