package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CorruptBlobError is the error of a blob of the store (or of an OCI
// layout read as an input) whose content does not hash to its digest, or
// does not have the size its descriptor says.
type CorruptBlobError struct {
	What   string  // "blob", or what the blob is: "manifest", "config", "layer"
	Digest v1.Hash // the blob's name
	Got    v1.Hash // what its content hashes to
	// Size is the size wanted (-1 when unknown) and GotSize the one read.
	Size, GotSize int64
	// At is where the blob is, for one that is not the store's: "oci-layout DIR".
	At string
}

func (e *CorruptBlobError) Error() string {
	size := ""
	if e.Size >= 0 && e.GotSize != e.Size {
		size = fmt.Sprintf("it has %d bytes, want %d; ", e.GotSize, e.Size)
	}
	what := e.What
	if what == "" {
		what = "blob"
	}
	if e.At != "" {
		return fmt.Sprintf("%s %s of %s does not match its digest (%sits content hashes to %s)", what, e.Digest, e.At, size, e.Got)
	}
	return fmt.Sprintf("%s %s in the store is corrupt (%sits content hashes to %s); run kiln cache verify --repair", what, e.Digest, size, e.Got)
}

// VerifyReader returns a reader of rc, the content of the store's blob d
// of size bytes (-1: any size), that hashes what it reads and, at the
// end, fails with a *CorruptBlobError instead of returning io.EOF when the
// content is not d's. Closing it closes rc.
func VerifyReader(rc io.ReadCloser, d v1.Hash, size int64) io.ReadCloser {
	return blobReader(rc, "", d, size, "")
}

// blobReader is VerifyReader for the blob what (see CorruptBlobError) at.
func blobReader(rc io.ReadCloser, what string, d v1.Hash, size int64, at string) *digestReader {
	return newDigestReader(rc, d, size, func(got v1.Hash, n int64) error {
		return &CorruptBlobError{What: what, Digest: d, Got: got, Size: size, GotSize: n, At: at}
	})
}

// digestReader hashes what it reads and fails at the end, with the error
// of mismatch, when the content does not have the digest and size wanted.
type digestReader struct {
	rc       io.ReadCloser
	h        hash.Hash
	n        int64
	want     v1.Hash
	size     int64
	mismatch func(got v1.Hash, n int64) error
	err      error // sticky, once the end is reached
}

func newDigestReader(rc io.ReadCloser, want v1.Hash, size int64, mismatch func(v1.Hash, int64) error) *digestReader {
	return &digestReader{rc: rc, h: sha256.New(), want: want, size: size, mismatch: mismatch}
}

func (v *digestReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if got := hashOf(v.h); got != v.want || (v.size >= 0 && v.n != v.size) {
			v.err = v.mismatch(got, v.n)
			return 0, v.err // the bytes of p cannot be trusted either
		}
		v.err = io.EOF
	}
	return n, err
}

// drain reads the rest of the stream, so that a mismatch is found; it
// returns the mismatch's error, or nil.
func (v *digestReader) drain() error {
	if _, err := io.Copy(io.Discard, v); err != nil {
		return err
	}
	return nil
}

func (v *digestReader) Close() error { return v.rc.Close() }

// checkedDecompress decompresses vr (by its magic bytes, as decompress
// does). When decompressing fails, or once it ends, the rest of vr is read
// so that a blob whose bytes do not match its digest fails with vr's
// mismatch error rather than with the decompressor's.
func checkedDecompress(vr *digestReader) (io.ReadCloser, error) {
	dr, err := decompress(vr)
	if err != nil {
		if derr := vr.drain(); derr != nil {
			return nil, derr
		}
		return nil, err
	}
	return &readCloser{Reader: &drainOnEnd{r: dr, vr: vr}, close: dr.Close}, nil
}

// drainOnEnd reads a decompressed stream; at its end, or on an error, it
// drains the compressed stream vr so that vr's check runs.
type drainOnEnd struct {
	r  io.Reader
	vr *digestReader
}

func (d *drainOnEnd) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil {
		if derr := d.vr.drain(); derr != nil {
			return n, derr
		}
	}
	return n, err
}

// VerifyBlob reads the blob d in full and fails with a *CorruptBlobError
// when its content does not hash to d.
func (s *Store) VerifyBlob(ctx context.Context, d v1.Hash) error {
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return fmt.Errorf("verify blob %s: %w", d, err)
	}
	vr := VerifyReader(f, d, -1)
	defer vr.Close()
	if _, err := io.Copy(io.Discard, &ctxReader{ctx: ctx, r: vr}); err != nil {
		return err
	}
	return nil
}

// Blobs returns the digests of every blob file in the store.
func (s *Store) Blobs(ctx context.Context) ([]v1.Hash, error) {
	ents, err := os.ReadDir(s.blobsDir())
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	var hs []v1.Hash
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := v1.NewHash("sha256:" + e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// RemoveBlob removes the blob d, as verify --repair does with a corrupt
// one: whatever still needs it finds it missing instead of wrong.
func (s *Store) RemoveBlob(d v1.Hash) error {
	if err := os.Remove(s.BlobPath(d)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove blob %s: %w", d, err)
	}
	return nil
}
