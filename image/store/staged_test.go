package store

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobCount counts the blobs of s.
func blobCount(t *testing.T, s *Store) int {
	t.Helper()
	ents, err := os.ReadDir(s.blobsDir())
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestStageLayerCompressedOnce: StageLayer keeps a layer as its tar, a
// blob named by its diffID, and compresses nothing; Recompress compresses
// it (after a Precompress, waiting for it) into a gzip blob of the same
// diffID, and later calls, in this Store or another on the same root,
// reuse that blob instead of compressing again.
func TestStageLayerCompressedOnce(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	l := stageTestLayer(t, s, "staged")
	diffID, _ := l.DiffID()
	if d, _ := l.Digest(); d != diffID {
		t.Errorf("staged layer digest %s, want its diffID %s", d, diffID)
	}
	if mt, _ := l.MediaType(); mt != types.OCIUncompressedLayer {
		t.Errorf("staged layer media type %s, want %s", mt, types.OCIUncompressedLayer)
	}
	if size, _ := l.Size(); fileSize(t, s, diffID) != size {
		t.Errorf("the blob of the staged layer has %d bytes, want %d", fileSize(t, s, diffID), size)
	}
	if n := blobCount(t, s); n != 1 {
		t.Errorf("%d blobs after StageLayer, want 1 (the tar)", n)
	}

	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	s.Precompress(ctx, l, Gzip)
	var first v1.Hash
	for i, st := range []*Store{s, s, reopen(t, s)} {
		out, err := st.Recompress(ctx, img, Gzip)
		if err != nil {
			t.Fatal(err)
		}
		m, err := out.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		got := m.Layers[0]
		if got.MediaType != types.OCILayer {
			t.Errorf("call %d: media type %s, want %s", i, got.MediaType, types.OCILayer)
		}
		ls, _ := out.Layers()
		if d, _ := ls[0].DiffID(); d != diffID {
			t.Errorf("call %d: diffID %s, want %s", i, d, diffID)
		}
		if i == 0 {
			first = got.Digest
		} else if got.Digest != first {
			t.Errorf("call %d: compressed to %s, want the blob %s made before", i, got.Digest, first)
		}
		if n := blobCount(t, s); n != 2 {
			t.Errorf("call %d: %d blobs, want 2 (the tar and one gzip blob)", i, n)
		}
	}
}

// reopen opens another Store on s's root, as another kiln process would.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	o, err := Open(context.Background(), s.Root())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestCollectRecords: collection removes the records of compressed blobs
// and lazy layers once nothing keeps what they describe, and keeps those
// of a tagged image's layers.
func TestCollectRecords(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	stage := func(name string) v1.Layer {
		l, err := s.StageLayer(ctx, func(w io.Writer) error { return writeTestTar(w, name) })
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	kept, dropped := stage("kept"), stage("dropped")
	keptImg, err := mutate.AppendLayers(empty.Image, kept)
	if err != nil {
		t.Fatal(err)
	}
	droppedImg, err := mutate.AppendLayers(empty.Image, dropped)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []v1.Image{keptImg, droppedImg} {
		gz, err := s.Recompress(ctx, img, Gzip)
		if err != nil {
			t.Fatal(err)
		}
		if img == keptImg {
			// Tagged as pushed: its gzip blob is kept, and so its record.
			if _, err := s.Tag(ctx, gz, "kept-gzip"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.Tag(ctx, keptImg, "kept"); err != nil {
		t.Fatal(err)
	}
	keptID, _ := kept.DiffID()
	droppedID, _ := dropped.DiffID()
	lazyID := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	lazyBlob := v1.Descriptor{MediaType: types.OCILayer, Size: 10, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}}
	if _, err := s.PutLazyLayer(ctx, "127.0.0.1:1/cache", lazyBlob, lazyID, 100); err != nil {
		t.Fatal(err)
	}
	records := func() []string {
		var out []string
		for _, d := range []string{"compressed", "lazy"} {
			ents, _ := os.ReadDir(filepath.Join(s.Root(), d))
			for _, e := range ents {
				out = append(out, d+"/"+e.Name())
			}
		}
		return out
	}
	before := records()
	for _, want := range []string{"compressed/" + keptID.Hex + "-gzip", "compressed/" + droppedID.Hex + "-gzip", "lazy/" + lazyID.Hex} {
		if !slices.Contains(before, want) {
			t.Fatalf("records %v: no %s", before, want)
		}
	}
	im, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.collect(ctx, im, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, want := records(), []string{"compressed/" + keptID.Hex + "-gzip"}; !slices.Equal(got, want) {
		t.Errorf("records after collection: %v, want %v", got, want)
	}
	if _, err := os.Stat(s.BlobPath(keptID)); err != nil {
		t.Errorf("the tagged image's layer: %v", err)
	}
}

// trickleLayer is a store layer whose tar trickles out (zeros, a chunk
// every few milliseconds, for seconds) in place of its content: a
// compression of it is under way, its temp file made, for long. Its media
// type says it is compressed, so that the zeros are hashed and a
// compression that ends anyway fails on the diffID rather than keeping
// them.
type trickleLayer struct {
	v1.Layer
	started chan struct{} // closed at the first Read
	closed  atomic.Bool   // its reader was closed: the compression ended
}

// newTrickleLayer stages a layer in s and returns it as a trickleLayer.
func newTrickleLayer(t *testing.T, s *Store) *trickleLayer {
	t.Helper()
	return &trickleLayer{Layer: stageTestLayer(t, s, "trickle"), started: make(chan struct{})}
}

// stageTestLayer stages in s the layer of writeTestTar's tar named name.
func stageTestLayer(t *testing.T, s *Store, name string) v1.Layer {
	t.Helper()
	l, err := s.StageLayer(context.Background(), func(w io.Writer) error { return writeTestTar(w, name) })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *trickleLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (l *trickleLayer) Uncompressed() (io.ReadCloser, error) { return &trickle{l: l}, nil }

// waitStarted waits until a compression of l reads it.
func (l *trickleLayer) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-l.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the compression Precompress started did not read the layer in 10s")
	}
}

type trickle struct {
	l    *trickleLayer
	n    int
	once sync.Once
}

func (r *trickle) Read(p []byte) (int, error) {
	r.once.Do(func() { close(r.l.started) })
	if r.n == 500 {
		return 0, io.EOF
	}
	r.n++
	time.Sleep(10 * time.Millisecond)
	p = p[:min(len(p), 32<<10)]
	clear(p)
	return len(p), nil
}

func (r *trickle) Close() error {
	r.l.closed.Store(true)
	return nil
}

// TestPrecompressEndsWithStore: a test's store (newStore) ends the
// compressions that Precompress started when the test ends, so none is
// still writing into the root while t.TempDir removes it (which failed
// with "directory not empty"), nor after.
func TestPrecompressEndsWithStore(t *testing.T) {
	var l *trickleLayer
	// Registered before newStore's cleanups, so run after them.
	t.Cleanup(func() {
		if l != nil && !l.closed.Load() {
			t.Error("the compression Precompress started still runs after the test's store was cleaned up")
		}
	})
	s := newStore(t)
	l = newTrickleLayer(t, s)
	s.Precompress(context.Background(), l, Gzip)
	l.waitStarted(t)
}

// TestCloseCancelsPrecompress: Close cancels a compression that
// Precompress started rather than waiting for its end (the trickle takes
// 5s), and returns once it ended: its temp file removed, no blob nor
// record of it left.
func TestCloseCancelsPrecompress(t *testing.T) {
	s := newStore(t)
	l := newTrickleLayer(t, s)
	s.Precompress(context.Background(), l, Gzip)
	l.waitStarted(t)
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s: it waited for the compression instead of cancelling it", d)
	}
	if !l.closed.Load() {
		t.Error("Close returned while the compression still ran")
	}
	if ents, err := os.ReadDir(s.tmpDir()); err != nil || len(ents) != 0 {
		t.Errorf("tmp/ after Close: %v (%v), want empty", ents, err)
	}
	if n := blobCount(t, s); n != 1 {
		t.Errorf("%d blobs after Close, want 1 (the staged tar)", n)
	}
	diffID, _ := l.DiffID()
	if _, err := os.Stat(s.compressedPath(diffID, Gzip)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record of a cancelled compression: %v, want none", err)
	}
}

// TestCompressionFindsBlobMadeMeanwhile: the compression of a layer, once
// registered as the one under way, first looks for a blob made since its
// caller looked. A Precompress that looked before a Recompress's
// compression ended, and registered after, compressed the layer again,
// writing into the root after the test had ended (TempDir: "directory
// not empty"). Here the blob is made before the registered compression
// runs, as in that race.
func TestCompressionFindsBlobMadeMeanwhile(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	l := stageTestLayer(t, s, "meanwhile")
	made, err := s.Compress(ctx, l, Gzip)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := made.Digest()
	diffID, _ := l.DiffID()
	counted := &readCountLayer{Layer: l}
	key := diffID.Hex + "-" + string(Gzip)
	mine := &compression{done: make(chan struct{})}
	s.compressing.Store(key, mine)
	got, err := s.compressNow(ctx, counted, diffID, Gzip, key, mine)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("compressed to %s, want the blob %s made before", d, want)
	}
	if n := counted.reads.Load(); n != 0 {
		t.Errorf("the layer's tar was read %d times: compressed again", n)
	}
}

// readCountLayer counts the readers of its layer's tar.
type readCountLayer struct {
	v1.Layer
	reads atomic.Int32
}

func (l *readCountLayer) Uncompressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Uncompressed()
}
