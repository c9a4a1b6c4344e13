package progress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kiln-build/kiln/fsm"
)

// Plain prints "[node] state" lines and each step's output, prefixed by
// its node, to w.
type Plain struct {
	mu      sync.Mutex
	w       io.Writer
	partial map[string][]byte // output not yet ended by a newline
	out     []byte            // the buffer of Output's write
}

// maxLine is the longest line Plain holds back for its newline: a longer
// one is printed in pieces of maxLine bytes.
const maxLine = 64 << 10

// NewPlain returns a Plain printer writing to w.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w, partial: map[string][]byte{}} }

// Event prints one transition.
func (p *Plain) Event(e fsm.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.State {
	case fsm.CheckingCache, fsm.Creating, fsm.Committing:
		return // too fine-grained for a log
	}
	if e.State.Final() {
		p.flush(e.Node)
	}
	line := fmt.Sprintf("[%s] %s: %s", e.Node, e.State, e.Name)
	if e.State.Final() && e.State != fsm.Cached {
		// The node's whole time, not its last state's.
		line += fmt.Sprintf(" (%s)", e.Elapsed.Round(time.Millisecond))
	}
	if e.Error != "" && e.State == fsm.Failed {
		line += ": " + firstLine(e.Error)
	}
	fmt.Fprintln(p.w, line)
}

// Output prints a node's output line by line, each line prefixed by its
// node, in one write per call: a chunk of output is often thousands of
// lines.
func (p *Plain) Output(node string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prefix := "[" + node + "] | "
	out := p.out[:0]
	part := p.partial[node]
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		next := i + 1
		if i < 0 {
			if len(part)+len(b) <= maxLine {
				part = append(part, b...)
				break
			}
			i = maxLine - len(part) // a piece of a line too long to hold
			next = i
		}
		out = append(append(append(append(out, prefix...), part...), b[:i]...), '\n')
		part = part[:0]
		b = b[next:]
	}
	p.partial[node] = part
	p.write(out)
}

// write writes out, and keeps its buffer for the next line when it is
// not too big to hold.
func (p *Plain) write(out []byte) {
	if len(out) > 0 {
		_, _ = p.w.Write(out)
	}
	if cap(out) <= 1<<20 {
		p.out = out
	}
}

// flush prints the unfinished line of node, if it has one; the caller
// holds p.mu.
func (p *Plain) flush(node string) {
	part, ok := p.partial[node]
	if !ok {
		return
	}
	delete(p.partial, node)
	if len(part) > 0 {
		p.write(append(append(append(p.out[:0], "["+node+"] | "...), part...), '\n'))
	}
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// JSON writes one JSON object per event, and per chunk of output, to w,
// and, with Result, the object that ends a build. It remembers the first
// node that failed, for the result.
type JSON struct {
	mu     sync.Mutex
	enc    *json.Encoder
	failed *fsm.Event // the first transition to Failed
}

// NewJSON returns a JSON printer writing to w.
func NewJSON(w io.Writer) *JSON { return &JSON{enc: json.NewEncoder(w)} }

type jsonEvent struct {
	Type       string   `json:"type"` // "state" or "output"
	Time       string   `json:"time"`
	Node       string   `json:"node"`
	Name       string   `json:"name,omitempty"`
	From       string   `json:"from,omitempty"`
	State      string   `json:"state,omitempty"`
	CacheKey   string   `json:"cache_key,omitempty"`
	DurationMS float64  `json:"duration_ms,omitempty"` // time in From
	ElapsedMS  *float64 `json:"elapsed_ms,omitempty"`  // time since the node started; on every state event
	Error      string   `json:"error,omitempty"`
	Output     string   `json:"output,omitempty"`
}

// resultEvent is the last object of a build.
type resultEvent struct {
	Type     string `json:"type"` // "result"
	Time     string `json:"time"`
	ExitCode int    `json:"exit_code"`
	Digest   string `json:"digest,omitempty"`
	Node     string `json:"node,omitempty"`
	Name     string `json:"name,omitempty"`
	Error    string `json:"error,omitempty"`
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Event writes one transition.
func (j *JSON) Event(e fsm.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e.State == fsm.Failed && j.failed == nil {
		j.failed = &e
	}
	elapsed := millis(e.Elapsed)
	_ = j.enc.Encode(jsonEvent{
		Type: "state", Time: e.Time.UTC().Format(time.RFC3339Nano), Node: e.Node, Name: e.Name,
		From: string(e.From), State: string(e.State), CacheKey: e.CacheKey,
		DurationMS: millis(e.Duration), ElapsedMS: &elapsed, Error: e.Error,
	})
}

// Output writes a chunk of a node's output.
func (j *JSON) Output(node string, b []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(jsonEvent{Type: "output", Time: time.Now().UTC().Format(time.RFC3339Nano), Node: node, Output: string(b)})
}

// Result is how a build ended, for the last JSON object.
type Result struct {
	ExitCode int    // kiln's exit status
	Digest   string // the image built; "" when the build failed
	Err      error  // why it failed; nil when it succeeded
}

// Result writes the object that ends a build, on every outcome: the exit
// status, the digest or the error, and the first node that failed, if
// one did. Nothing may be written after it.
func (j *JSON) Result(r Result) {
	j.mu.Lock()
	defer j.mu.Unlock()
	ev := resultEvent{Type: "result", Time: time.Now().UTC().Format(time.RFC3339Nano), ExitCode: r.ExitCode, Digest: r.Digest}
	if r.Err != nil {
		ev.Error = r.Err.Error()
		if j.failed != nil {
			ev.Node, ev.Name = j.failed.Node, j.failed.Name
		}
	}
	_ = j.enc.Encode(ev)
}
