package progress

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acarl005/stripansi"
	"github.com/mattn/go-runewidth"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/kiln-build/kiln/fsm"
)

// TTY draws a build live on a terminal, with github.com/vbauerster/mpb:
// one line per node that has started, with a spinner and its elapsed time
// while it works and the last lines of its output under it; a node that
// ends moves up as a line that stays (cached nodes marked CACHED), and
// Close prints a summary. Hold lends the terminal to another speaker (a
// debugger's prompt) for a while. It is safe for concurrent use.
type TTY struct {
	out   io.Writer
	opts  ttyOptions
	width atomic.Int64 // what a line's text had room for, last drawn

	// mu guards the rest, and orders what is drawn: it is held while
	// calling mpb, whose goroutines never take it.
	mu      sync.Mutex
	p       *mpb.Progress // made when a node starts and nothing holds the view
	nodes   map[string]*ttyNode
	order   []*ttyNode // by start, to draw them again after a hold
	held    bool       // Hold lent the terminal: nothing is drawn
	pending []string   // the lines of the nodes that ended while held
}

// ttyNode is one node as the view shows it. Its mu, never held while
// calling mpb (whose goroutines call back into the node to draw it),
// guards the rest.
type ttyNode struct {
	mu         sync.Mutex
	key, name  string
	state      fsm.State
	start, end time.Time
	errText    string
	tail       int      // how many lines to keep
	lines      []string // the last lines of output
	partial    []byte   // output not yet ended by a newline
	bar        *mpb.Bar // its live line, while it is drawn
	shown      bool     // it has a line: it did not end before it started
	// stopped says why a debugger stopped the node, while Hold holds the
	// view for it; its time does not run from stoppedAt.
	stopped   string
	stoppedAt time.Time
}

// TTYOption configures a TTY.
type TTYOption func(*ttyOptions) error

type ttyOptions struct {
	tail    int
	refresh time.Duration
	width   int
}

// WithTailLines sets how many of a running node's last output lines the
// view shows under it; the default is 3.
func WithTailLines(n int) TTYOption {
	return func(o *ttyOptions) error {
		if n < 0 {
			return fmt.Errorf("tail lines %d: must not be negative", n)
		}
		o.tail = n
		return nil
	}
}

// WithRefresh sets how often the view is redrawn; the default is 150ms.
func WithRefresh(d time.Duration) TTYOption {
	return func(o *ttyOptions) error {
		if d <= 0 {
			return fmt.Errorf("refresh every %s: must be positive", d)
		}
		o.refresh = d
		return nil
	}
}

// WithWidth sets the width of the lines when w is not a terminal (a
// terminal's own width is used otherwise); the default is 100.
func WithWidth(n int) TTYOption {
	return func(o *ttyOptions) error {
		if n < 20 {
			return fmt.Errorf("width %d: must be at least 20", n)
		}
		o.width = n
		return nil
	}
}

// NewTTY returns a TTY drawing on w, usually a terminal's *os.File. Close
// must be called to end the drawing.
func NewTTY(w io.Writer, opts ...TTYOption) (*TTY, error) {
	o := ttyOptions{tail: 3, refresh: 150 * time.Millisecond, width: 100}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &TTY{out: w, opts: o, nodes: map[string]*ttyNode{}}, nil
}

// progress returns the mpb container, starting it on first use (a
// build that fails before any node starts draws nothing) and after a
// hold. t.mu is held.
func (t *TTY) progress() *mpb.Progress {
	if t.p == nil {
		t.p = mpb.New(mpb.WithOutput(t.out), mpb.WithAutoRefresh(), mpb.WithRefreshRate(t.opts.refresh),
			mpb.WithWidth(t.opts.width))
	}
	return t.p
}

// draw gives n its live line. t.mu is held, not n.mu.
func (t *TTY) draw(n *ttyNode) {
	bar := t.progress().New(0, mpb.SpinnerStyle(),
		mpb.BarWidth(1),
		mpb.BarFillerMiddleware(func(spin mpb.BarFiller) mpb.BarFiller { return n.mark(spin) }),
		mpb.AppendDecorators(decor.Any(func(s decor.Statistics) string {
			t.width.Store(int64(s.AvailableWidth))
			return n.line(s.AvailableWidth)
		})),
		mpb.BarExtender(mpb.BarFillerFunc(func(w io.Writer, s decor.Statistics) error { return n.tailLines(w, s.AvailableWidth) }), false),
	)
	n.mu.Lock()
	n.bar = bar
	n.mu.Unlock()
}

// lineWidth is the room of a line's text, as last drawn.
func (t *TTY) lineWidth() int {
	if w := int(t.width.Load()); w > 0 {
		return w
	}
	return t.opts.width - 4
}

// Event shows one transition: a node that starts gets a line, a node that
// ends completes it.
func (t *TTY) Event(e fsm.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[e.Node]
	start := n == nil || n.final() && !e.State.Final() // (again, after a failure)
	if start {
		n = &ttyNode{key: e.Node, name: e.Name, start: e.Time, tail: t.opts.tail}
		t.nodes[e.Node] = n
		// A node cancelled before it started gets no line; a service
		// that never started, as its users were cached, does.
		if !(e.From == fsm.Pending && e.State.Final() && e.State != fsm.Cached) {
			n.shown = true
			t.order = append(t.order, n)
			if !t.held {
				t.draw(n)
			}
		}
	}
	n.mu.Lock()
	n.state = e.State
	if e.State == fsm.Failed {
		n.errText = firstLine(e.Error)
	}
	bar, shown := n.bar, n.shown
	if e.State.Final() {
		n.end = e.Time
		n.bar = nil
	}
	n.mu.Unlock()
	if !e.State.Final() || !shown {
		return
	}
	// The node's line leaves the live part for good, above it, in the
	// order nodes end.
	line := " " + n.markText() + " " + n.line(t.lineWidth()) + "\n"
	if t.held {
		t.pending = append(t.pending, line)
		return
	}
	if bar != nil {
		bar.Abort(true)
	}
	_, _ = t.progress().Write([]byte(line))
}

// Hold lends the terminal to another speaker, a debugger stopped at node
// (why says why), until release is called: the view erases its live
// part, prints node's line marked as stopped, and draws nothing until
// release; node's time does not run meanwhile. Release prints the lines
// of the nodes that ended meanwhile and draws the live part again, under
// what the other speaker wrote. A second Hold before release does
// nothing.
func (t *TTY) Hold(node, why string) (release func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held {
		return func() {}
	}
	t.held = true
	t.stopDrawing()
	now := time.Now()
	if n := t.nodes[node]; n != nil && !n.final() {
		n.mu.Lock()
		n.stopped, n.stoppedAt = why, now
		n.mu.Unlock()
		_, _ = io.WriteString(t.out, " ‖ "+n.line(t.lineWidth())+"\n")
	}
	var once sync.Once
	return func() { once.Do(func() { t.release(node) }) }
}

// stopDrawing drops the live lines and ends the mpb container, which
// erases them: once it returns, mpb writes nothing. t.mu is held.
func (t *TTY) stopDrawing() {
	if t.p == nil {
		return
	}
	for _, n := range t.order {
		n.mu.Lock()
		bar := n.bar
		n.bar = nil
		n.mu.Unlock()
		if bar != nil {
			bar.Abort(true)
		}
	}
	t.p.Wait()
	t.p = nil
}

// release ends a Hold for node.
func (t *TTY) release(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.held {
		return // closed
	}
	t.held = false
	if n := t.nodes[node]; n != nil {
		n.mu.Lock()
		if n.stopped != "" {
			n.start = n.start.Add(time.Since(n.stoppedAt))
			n.stopped = ""
		}
		n.mu.Unlock()
	}
	for _, l := range t.pending {
		_, _ = io.WriteString(t.out, l)
	}
	t.pending = nil
	for _, n := range t.order {
		if !n.final() {
			t.draw(n)
		}
	}
}

func (n *ttyNode) final() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.Final()
}

// Output keeps the last lines of a node's output, to show under it.
func (t *TTY) Output(node string, b []byte) {
	t.mu.Lock()
	n := t.nodes[node]
	t.mu.Unlock()
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	buf := append(n.partial, b...)
	if end := bytes.LastIndexByte(buf, '\n'); end >= 0 {
		// Only the last n.tail lines can show: clean those alone, not
		// each of the thousands a chunk may hold.
		var last []string
		for rest := buf[:end]; len(last) < n.tail; {
			i := bytes.LastIndexByte(rest, '\n')
			last = append(last, clean(rest[i+1:]))
			if i < 0 {
				break
			}
			rest = rest[:i]
		}
		slices.Reverse(last)
		n.lines = append(n.lines, last...)
		if len(n.lines) > n.tail {
			n.lines = append(n.lines[:0], n.lines[len(n.lines)-n.tail:]...)
		}
		buf = buf[end+1:]
	}
	if len(buf) > 4096 {
		buf = buf[len(buf)-4096:]
	}
	n.partial = append(n.partial[:0], buf...)
}

// clean makes a line of a process's output safe to draw: colours and
// other escape sequences go, a carriage return keeps what follows it (as
// a terminal would show it), other control characters become spaces.
func clean(b []byte) string {
	s := stripansi.Strip(string(b))
	if i := strings.LastIndexByte(strings.TrimRight(s, "\r"), '\r'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimRight(s, "\r"))
}

// mark is the filler of n's line: mpb's spinner while n works, then a
// mark for how it ended.
func (n *ttyNode) mark(spin mpb.BarFiller) mpb.BarFiller {
	return mpb.BarFillerFunc(func(w io.Writer, s decor.Statistics) error {
		m := n.markText()
		if m == "" {
			return spin.Fill(w, s)
		}
		_, err := io.WriteString(w, m)
		return err
	})
}

// markText is the mark of how n ended, or "" while it works.
func (n *ttyNode) markText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case fsm.Done, fsm.Passed, fsm.Cached, fsm.Stopped:
		return "✔"
	case fsm.Failed:
		return "✗"
	case fsm.Cancelled:
		return "-"
	}
	return ""
}

// line is the text of n's line after the mark: its key, name, state and
// time, cut to width.
func (n *ttyNode) line(width int) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	end := n.end
	if !n.state.Final() {
		end = time.Now()
	}
	var suffix string
	switch {
	case n.stopped != "":
		suffix = seconds(n.stoppedAt.Sub(n.start)) + " stopped " + n.stopped
	case n.state == fsm.Cached:
		suffix = "CACHED"
	case n.state == fsm.Failed:
		suffix = fmt.Sprintf("%s FAILED", seconds(end.Sub(n.start)))
		if n.errText != "" {
			suffix += ": " + n.errText
		}
	case n.state == fsm.Cancelled:
		suffix = "CANCELLED"
	case n.state == fsm.Done, n.state == fsm.Passed:
		suffix = seconds(end.Sub(n.start))
	default:
		suffix = seconds(end.Sub(n.start))
		if n.state != fsm.Running {
			suffix += " " + string(n.state)
		}
	}
	head := "[" + n.key + "] " + n.name
	// Leave mpb room for the spaces around the mark and the mark.
	room := width - runewidth.StringWidth(suffix) - 6
	if room < 10 {
		return runewidth.Truncate(head+"  "+suffix, max(width-1, 0), "…")
	}
	head = runewidth.Truncate(head, room, "…")
	return head + strings.Repeat(" ", room-runewidth.StringWidth(head)+2) + suffix
}

// tailLines writes the last lines of a running node's output.
func (n *ttyNode) tailLines(w io.Writer, width int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state.Final() || n.tail == 0 {
		return nil
	}
	lines := n.lines
	if p := clean(n.partial); strings.TrimSpace(p) != "" {
		lines = append(lines[:len(lines):len(lines)], p)
		if len(lines) > n.tail {
			lines = lines[len(lines)-n.tail:]
		}
	}
	for _, l := range lines {
		l = runewidth.Truncate("    │ "+l, max(width-1, 8), "…")
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// seconds formats d as "1.2s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// Summary is what a build made, for the last lines of a view.
type Summary struct {
	Ran, Cached int
	Duration    time.Duration
	Digest      string // "" when the build failed
	Err         error
}

// Close ends the live view: nodes still drawn as working are dropped,
// the last frame is drawn, then the summary. The TTY must not be used
// after.
func (t *TTY) Close(s Summary) error {
	t.mu.Lock()
	t.stopDrawing()
	t.held = false
	for _, l := range t.pending {
		_, _ = io.WriteString(t.out, l)
	}
	t.pending = nil
	t.mu.Unlock()
	var line string
	if s.Err == nil {
		line = fmt.Sprintf("✔ built %s in %s: %s ran, %d cached\n", s.Digest, s.Duration.Round(time.Millisecond), Count(s.Ran, "step"), s.Cached)
	} else {
		line = fmt.Sprintf("✗ build failed after %s: %s ran, %d cached\n", s.Duration.Round(time.Millisecond), Count(s.Ran, "step"), s.Cached)
	}
	_, err := io.WriteString(t.out, line)
	return err
}
