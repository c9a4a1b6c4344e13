package debugger

import (
	"bytes"
	"io"
	"sync"
)

// input reads the debugger's input through one goroutine, so that a
// shell can borrow it and give it back without a read left pending on
// the terminal that would swallow the next command.
type input struct {
	r       io.Reader
	once    sync.Once
	ch      chan []byte
	mu      sync.Mutex // guards pending and eof: a borrowed reader may outlive its shell
	pending []byte
	eof     bool
}

func newInput(r io.Reader) *input {
	return &input{r: r, ch: make(chan []byte)}
}

func (in *input) start() {
	in.once.Do(func() {
		go func() {
			for {
				buf := make([]byte, 4096)
				n, err := in.r.Read(buf)
				if n > 0 {
					in.ch <- buf[:n]
				}
				if err != nil {
					close(in.ch)
					return
				}
			}
		}()
	})
}

// line returns the next line, without its newline; io.EOF at the end.
func (in *input) line() (string, error) {
	in.start()
	in.mu.Lock()
	defer in.mu.Unlock()
	for {
		if i := bytes.IndexByte(in.pending, '\n'); i >= 0 {
			l := string(bytes.TrimRight(in.pending[:i], "\r"))
			in.pending = in.pending[i+1:]
			return l, nil
		}
		if in.eof {
			if len(in.pending) > 0 {
				l := string(in.pending)
				in.pending = nil
				return l, nil
			}
			return "", io.EOF
		}
		in.mu.Unlock()
		b, ok := <-in.ch
		in.mu.Lock()
		if !ok {
			in.eof = true
			continue
		}
		in.pending = append(in.pending, b...)
	}
}

// borrow returns a reader of the input that ends (io.EOF) once stop is
// closed, leaving what it has not read to the prompt.
func (in *input) borrow(stop <-chan struct{}) io.Reader {
	in.start()
	return readerFunc(func(p []byte) (int, error) {
		in.mu.Lock()
		defer in.mu.Unlock()
		if len(in.pending) == 0 {
			if in.eof {
				return 0, io.EOF
			}
			in.mu.Unlock()
			var b []byte
			ok := true
			select {
			case b, ok = <-in.ch:
			case <-stop:
				in.mu.Lock()
				return 0, io.EOF
			}
			in.mu.Lock()
			if !ok {
				in.eof = true
				return 0, io.EOF
			}
			in.pending = append(in.pending, b...)
		}
		n := copy(p, in.pending)
		in.pending = in.pending[n:]
		return n, nil
	})
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
