package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// StagedLayer is a layer whose tar is written and whose diffID is known,
// and whose compressed blob is being made in the background (see
// StageLayer). DiffID answers at once; what needs the blob (Digest, Size,
// Compressed, Uncompressed, Wait) waits for it.
type StagedLayer struct {
	diffID v1.Hash
	done   chan struct{}
	layer  v1.Layer // once done: the blob's layer, or nil with err
	err    error
}

var _ v1.Layer = (*StagedLayer)(nil)

// StageLayer writes the uncompressed layer tar that write produces to a
// file in tmp/, computing its diffID, and returns at once: compressing it
// (pgzip, as WriteLayer) into a blob, synced and renamed into place, runs
// in the background, so that the next steps of a build need not wait for
// it. A crash meanwhile leaves only tmp/ files, which Open removes; the
// blob appears whole or not at all. Cancelling ctx stops the compression
// (Wait then fails).
func (s *Store) StageLayer(ctx context.Context, write func(w io.Writer) error) (*StagedLayer, error) {
	f, err := s.createTemp()
	if err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	tar := f.Name()
	fail := func(err error) (*StagedLayer, error) {
		f.Close()
		os.Remove(tar)
		return nil, fmt.Errorf("write layer: %w", err)
	}
	differ := sha256.New()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(&ctxWriter{ctx: ctx, w: io.MultiWriter(bw, differ)}); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	l := &StagedLayer{diffID: hashOf(differ), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer os.Remove(tar)
		defer f.Close()
		l.layer, l.err = s.writeLayer(ctx, Gzip, func(w io.Writer) error {
			_, err := io.Copy(w, f)
			return err
		}, l.diffID)
	}()
	return l, nil
}

// Wait waits for the layer's blob and returns its layer.
func (l *StagedLayer) Wait() (v1.Layer, error) {
	<-l.done
	return l.layer, l.err
}

func (l *StagedLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func (l *StagedLayer) Digest() (v1.Hash, error) {
	b, err := l.Wait()
	if err != nil {
		return v1.Hash{}, err
	}
	return b.Digest()
}

func (l *StagedLayer) Size() (int64, error) {
	b, err := l.Wait()
	if err != nil {
		return 0, err
	}
	return b.Size()
}

func (l *StagedLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (l *StagedLayer) Compressed() (io.ReadCloser, error) {
	b, err := l.Wait()
	if err != nil {
		return nil, err
	}
	return b.Compressed()
}

func (l *StagedLayer) Uncompressed() (io.ReadCloser, error) {
	b, err := l.Wait()
	if err != nil {
		return nil, err
	}
	return b.Uncompressed()
}
