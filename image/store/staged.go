package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// StageLayer stores the uncompressed layer tar that write produces as a
// blob named by its diffID (media type types.OCIUncompressedLayer), synced
// and renamed into place, and returns its layer: a step's layer is
// committed as soon as its tar and diffID are known, without compressing
// it. What needs a compressed blob (an export, a push, a cache export)
// gets it from Recompress, which compresses each such layer once and
// remembers the result (see Precompress to start that early).
func (s *Store) StageLayer(ctx context.Context, write func(w io.Writer) error) (v1.Layer, error) {
	f, err := s.createTemp()
	if err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // fails harmlessly once renamed
	}()
	differ := sha256.New()
	counter := &countWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(f, differ, counter), 1<<20)
	if err := write(&ctxWriter{ctx: ctx, w: bw}); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	diffID := hashOf(differ)
	if err := s.commitTemp(f, diffID); err != nil {
		return nil, fmt.Errorf("write layer %s: %w", diffID, err)
	}
	return &storeLayer{
		path:   s.BlobPath(diffID),
		desc:   v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: counter.n, Digest: diffID},
		diffID: diffID,
	}, nil
}

// isUncompressed reports whether mt is the media type of an uncompressed
// layer tar.
func isUncompressed(mt types.MediaType) bool {
	return mt == types.OCIUncompressedLayer || mt == types.DockerUncompressedLayer
}

// Precompress starts compressing l (a layer of the store, as StageLayer
// returns) as c in the background, so that a Recompress that follows
// finds it done or under way. Its errors are dropped: Recompress tries
// again and reports them. Cancelling ctx, or Close, stops it. After
// Close it does nothing.
func (s *Store) Precompress(ctx context.Context, l v1.Layer, c Compression) {
	s.bg.mu.Lock()
	defer s.bg.mu.Unlock()
	if s.bg.closed {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.bg.closing, cancel)
	s.bg.wg.Go(func() {
		defer cancel()
		defer stop()
		_, _ = s.compressedLayer(ctx, l, c)
	})
}

// background is the compressions that Precompress started in a Store.
type background struct {
	mu     sync.Mutex
	closed bool // Close was called: Precompress starts nothing
	wg     sync.WaitGroup
	// closing is cancelled by Close, which cancels each compression.
	closing context.Context
	close   context.CancelFunc
}

// Close cancels the compressions that Precompress started and waits for
// them to end, so that none writes into the root once it returns: what
// one wrote in tmp/ is removed, nothing half-written is left, and what
// it did not finish is compressed when something asks for it (Recompress,
// Compress). The Store's other methods work on after Close; calling it
// again does nothing more. A process that exits without it leaves the
// temp files of those compressions for the next Open to sweep.
func (s *Store) Close() {
	s.bg.mu.Lock()
	s.bg.closed = true
	s.bg.mu.Unlock()
	s.bg.close()
	s.bg.wg.Wait()
}

// Compress returns l compressed as c: l itself when it is, else (an
// uncompressed layer, or one compressed otherwise) the layer of a blob of
// the store made as Recompress makes one, once.
func (s *Store) Compress(ctx context.Context, l v1.Layer, c Compression) (v1.Layer, error) {
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	if c.is(mt) {
		return l, nil
	}
	return s.compressedLayer(ctx, l, c)
}

// Decompress makes, from the store's blob desc (a compressed layer whose
// tar has diffID), the uncompressed blob that a step's layer is kept as
// (see StageLayer), checking that its content hashes to diffID, and
// remembers desc as its compressed form (for Recompress and Compress).
// It returns the uncompressed blob's descriptor.
func (s *Store) Decompress(ctx context.Context, desc v1.Descriptor, diffID v1.Hash) (v1.Descriptor, error) {
	if isUncompressed(desc.MediaType) {
		return desc, nil
	}
	l := s.BlobLayer(desc, diffID)
	if _, err := s.putBlob(ctx, diffID, l.Uncompressed); err != nil {
		return v1.Descriptor{}, fmt.Errorf("decompress layer %s (diffID %s): %w", desc.Digest, diffID, err)
	}
	fi, err := os.Stat(s.BlobPath(diffID))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("decompress layer %s: %w", desc.Digest, err)
	}
	for _, c := range []Compression{Gzip, Zstd} {
		if mt, ok := c.mediaType(); ok && (mt == desc.MediaType || c == Gzip && desc.MediaType == types.DockerLayer) {
			if err := s.rememberCompressed(diffID, c, desc); err != nil {
				return v1.Descriptor{}, fmt.Errorf("decompress layer %s: %w", desc.Digest, err)
			}
		}
	}
	return v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: fi.Size(), Digest: diffID}, nil
}

// compression is a compression of one layer under way in this Store.
type compression struct {
	done chan struct{}
}

// compressedPath is the file that names the blob holding the content of
// the layer diffID compressed as c, once one was made.
func (s *Store) compressedPath(diffID v1.Hash, c Compression) string {
	return filepath.Join(s.root, "compressed", diffID.Hex+"-"+string(c))
}

// knownCompressed returns the layer of the blob that holds diffID's
// content compressed as c, when the store made or fetched one and has it
// still (collection removes such a blob when no image names it).
func (s *Store) knownCompressed(diffID v1.Hash, c Compression) (*storeLayer, bool) {
	b, err := os.ReadFile(s.compressedPath(diffID, c))
	if err != nil {
		return nil, false
	}
	var d v1.Descriptor
	if err := json.Unmarshal(b, &d); err != nil || checkHash(d.Digest) != nil {
		return nil, false
	}
	if fi, err := os.Stat(s.BlobPath(d.Digest)); err != nil || fi.Size() != d.Size {
		return nil, false
	}
	if touch(s.BlobPath(d.Digest)) != nil {
		return nil, false
	}
	return &storeLayer{path: s.BlobPath(d.Digest), desc: d, diffID: diffID}, true
}

// rememberCompressed records that the blob of d holds diffID's content
// compressed as c.
func (s *Store) rememberCompressed(diffID v1.Hash, c Compression, d v1.Descriptor) error {
	if err := os.MkdirAll(filepath.Dir(s.compressedPath(diffID, c)), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest})
	if err != nil {
		return err
	}
	return s.writeFileAtomic(s.compressedPath(diffID, c), b, 0o644)
}

// compressedLayer returns l's content compressed as c: the blob made
// before (knownCompressed), waiting for one under way in this Store, or a
// new one, remembered.
func (s *Store) compressedLayer(ctx context.Context, l v1.Layer, c Compression) (v1.Layer, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	// A lazy layer compressed so already is the registry's blob, which
	// a push to its registry mounts; other compressions need its tar.
	if d, err := l.Digest(); err == nil {
		if ll, ok := s.lazy(d); ok && !ll.Dir {
			if c.is(ll.Layer.MediaType) {
				return s.remoteLayer(ctx, ll, diffID)
			}
			if err := s.fetchLazy(ctx, d); err != nil {
				return nil, err
			}
		}
	}
	key := diffID.Hex + "-" + string(c)
	for {
		mine := &compression{done: make(chan struct{})}
		v, loaded := s.compressing.LoadOrStore(key, mine)
		if !loaded {
			return s.compressNow(ctx, l, diffID, c, key, mine)
		}
		// Wait for the one under way; if it failed, its entry is gone
		// and the next turn makes the blob here.
		select {
		case <-v.(*compression).done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// compressNow returns the blob made before (knownCompressed) of l, whose
// diffID is diffID, compressed as c, or compresses l into a new blob and
// remembers it; then it ends the compression mine, registered under key.
// It looks for the blob only once registered: a compression that ended
// between a look and the registering would be done again.
func (s *Store) compressNow(ctx context.Context, l v1.Layer, diffID v1.Hash, c Compression, key string, mine *compression) (v1.Layer, error) {
	defer func() {
		s.compressing.Delete(key)
		close(mine.done)
	}()
	if cl, ok := s.knownCompressed(diffID, c); ok {
		return cl, nil
	}
	cl, err := s.recompressLayer(ctx, l, c)
	if err != nil {
		return nil, err
	}
	if err := s.rememberCompressed(cl.diffID, c, cl.desc); err != nil {
		return nil, fmt.Errorf("compress layer %s: %w", cl.diffID, err)
	}
	return cl, nil
}

// checkHash reports whether h is a well-formed sha256.
func checkHash(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return errors.New("not a sha256 digest")
	}
	return nil
}
