package layer

import (
	"crypto/sha256"
	"hash"

	"golang.org/x/sys/unix"
)

// FileSums are the sha256 digests of the contents of the regular files a
// tar writer read (see [WithFileSums]), each with the inode metadata it was
// read under, so that [DigestTreeWith] need not read a file again while
// its inode number, size, modification time and change time are the same
// (writing a file moves its change time, which no one can set back).
type FileSums struct {
	m map[uint64]fileSum // by inode number
}

type fileSum struct {
	size, mtime, ctime int64
	sum                [sha256.Size]byte
}

// NewFileSums returns an empty FileSums.
func NewFileSums() *FileSums { return &FileSums{m: make(map[uint64]fileSum)} }

// Len returns how many files have a digest.
func (s *FileSums) Len() int { return len(s.m) }

// lookup returns the content digest of the file st describes, when one
// was read under the same metadata.
func (s *FileSums) lookup(st *unix.Stat_t) (sum [sha256.Size]byte, ok bool) {
	if s == nil {
		return sum, false
	}
	f, ok := s.m[st.Ino]
	if !ok || f.size != st.Size || f.mtime != st.Mtim.Nano() || f.ctime != st.Ctim.Nano() {
		return sum, false
	}
	return f.sum, true
}

// WithFileSums makes the tar writer hash each regular file's content as
// it copies it, into sums, on a goroutine of its own (the second core
// hashes while the first reads and writes the tar), for [DigestTreeWith].
// sums must not be read before the writer returns.
func WithFileSums(sums *FileSums) Option {
	return func(o *options) { o.sums = sums }
}

// fileHasher hashes the chunks of files that a tar writer copies, on its
// own goroutine. Chunks are buffers of a small ring, handed back once
// hashed.
type fileHasher struct {
	sums *FileSums
	work chan hashChunk
	free chan []byte
	done chan struct{}
}

// hashChunk is a chunk of the file being copied, or, with end set, the
// end of that file, described by st.
type hashChunk struct {
	b   []byte
	end bool
	st  *unix.Stat_t
}

// hasherBuffers is how many chunks may wait to be hashed.
const hasherBuffers = 4

func newFileHasher(sums *FileSums) *fileHasher {
	h := &fileHasher{
		sums: sums,
		work: make(chan hashChunk, hasherBuffers),
		free: make(chan []byte, hasherBuffers),
		done: make(chan struct{}),
	}
	for range hasherBuffers {
		h.free <- make([]byte, bufferSize)
	}
	go h.run()
	return h
}

func (h *fileHasher) run() {
	defer close(h.done)
	var d hash.Hash = sha256.New()
	for c := range h.work {
		if c.end {
			h.sums.m[c.st.Ino] = fileSum{size: c.st.Size, mtime: c.st.Mtim.Nano(), ctime: c.st.Ctim.Nano(), sum: [sha256.Size]byte(d.Sum(nil))}
			d.Reset()
			continue
		}
		d.Write(c.b)
		h.free <- c.b[:cap(c.b)]
	}
}

// buffer returns a free buffer to read the next chunk into.
func (h *fileHasher) buffer() []byte { return <-h.free }

// hash queues b, a buffer from buffer, to be hashed as the next chunk of
// the current file.
func (h *fileHasher) hash(b []byte) { h.work <- hashChunk{b: b} }

// giveBack returns a buffer that holds nothing to hash.
func (h *fileHasher) giveBack(b []byte) { h.free <- b[:cap(b)] }

// fileEnd ends the current file, whose whole content (st.Size bytes) was
// hashed, read under st.
func (h *fileHasher) fileEnd(st *unix.Stat_t) {
	c := *st
	h.work <- hashChunk{end: true, st: &c}
}

// stop waits for the queued chunks to be hashed and ends the goroutine.
// After an error, what was hashed of a file left unfinished is dropped
// with the writer.
func (h *fileHasher) stop() {
	close(h.work)
	<-h.done
}
