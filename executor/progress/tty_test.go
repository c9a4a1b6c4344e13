package progress

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/fsm"
)

// syncBuffer is a bytes.Buffer safe for mpb's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// escapes are the cursor movements mpb writes between frames.
var escapes = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// upAndClear is how mpb erases its last frame: n lines up, clear below.
var upAndClear = regexp.MustCompile(`\x1b\[(\d+)A\x1b\[J`)

// terminal returns what a terminal shows after out: each erased frame
// gone.
func terminal(out string) string {
	var lines []string
	for {
		loc := upAndClear.FindStringSubmatchIndex(out)
		chunk := out
		if loc != nil {
			chunk = out[:loc[0]]
		}
		lines = append(lines, strings.SplitAfter(chunk, "\n")...)
		if loc == nil {
			break
		}
		n, _ := strconv.Atoi(out[loc[2]:loc[3]])
		for len(lines) > 0 && lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		lines = lines[:max(len(lines)-n, 0)]
		out = out[loc[1]:]
	}
	return strings.Join(lines, "")
}

func TestTTY(t *testing.T) {
	var out syncBuffer
	v, err := NewTTY(&out, WithRefresh(20*time.Millisecond), WithWidth(80))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(node, name string, from, to fsm.State, errText string) {
		v.Event(fsm.Event{Time: time.Now(), Node: node, Name: name, From: from, State: to, Error: errText})
	}
	ev("main/base", "from: busybox", fsm.Pending, fsm.CheckingCache, "")
	ev("main/base", "from: busybox", fsm.CheckingCache, fsm.Cached, "")
	ev("main/0", "run: make all", fsm.Pending, fsm.CheckingCache, "")
	ev("main/0", "run: make all", fsm.CheckingCache, fsm.Creating, "")
	ev("main/0", "run: make all", fsm.Creating, fsm.Running, "")
	v.Output("main/0", []byte("compiling a.c\ncompiling b.c\n\x1b[31mlinking\x1b[0m\n"))
	ev("main/test/t", "test: t", fsm.Pending, fsm.Cancelled, "") // never started: no line
	// Let a few frames show the running step.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "│ linking") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond)
	running := escapes.ReplaceAllString(out.String(), "")
	ev("main/0", "run: make all", fsm.Running, fsm.Committing, "")
	ev("main/0", "run: make all", fsm.Committing, fsm.Done, "")
	ev("main/1", "run: false", fsm.Pending, fsm.CheckingCache, "")
	ev("main/1", "run: false", fsm.CheckingCache, fsm.Failed, "exit status 1\nmore")
	if err := v.Close(Summary{Ran: 2, Cached: 1, Duration: 1500 * time.Millisecond, Err: errors.New("x")}); err != nil {
		t.Fatal(err)
	}
	screen := escapes.ReplaceAllString(out.String(), "")

	for _, want := range []*regexp.Regexp{
		// While it ran: a spinner, the step, its elapsed time, its output.
		regexp.MustCompile(`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \[main/0\] run: make all +[1-9]\d*\.\ds\n`),
		regexp.MustCompile(`    │ compiling a.c\n    │ compiling b.c\n    │ linking\n`),
	} {
		if !want.MatchString(running) {
			t.Errorf("while running, the view did not match %q:\n%s", want, running)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`✔ \[main/base\] from: busybox +CACHED\n`),
		regexp.MustCompile(`✔ \[main/0\] run: make all +[1-9]\d*\.\ds\n`),
		regexp.MustCompile(`✗ \[main/1\] run: false +\d+\.\ds FAILED: exit status 1\n`),
		regexp.MustCompile(`✗ build failed after 1.5s: 2 steps ran, 1 cached\n$`),
	} {
		if !want.MatchString(screen) {
			t.Errorf("the view did not match %q:\n%s", want, screen)
		}
	}
	// What stays on the terminal: ended nodes, once each, in the order
	// they ended, then the summary.
	shown := regexp.MustCompile(`(?m)^ *`).ReplaceAllString(terminal(out.String()), "")
	shown = regexp.MustCompile(` +`).ReplaceAllString(shown, " ")
	shown = regexp.MustCompile(`\b\d+\.\ds\b`).ReplaceAllString(shown, "N.Ns")
	want := "✔ [main/base] from: busybox CACHED\n✔ [main/0] run: make all N.Ns\n✗ [main/1] run: false N.Ns FAILED: exit status 1\n✗ build failed after N.Ns: 2 steps ran, 1 cached\n"
	if diff := cmp.Diff(want, shown); diff != "" {
		t.Errorf("the terminal shows (-want +got):\n%s", diff)
	}
	if strings.Contains(screen, "main/test/t") {
		t.Errorf("a node cancelled before it started got a line:\n%s", screen)
	}
	// The last frame has no output lines: they go with the step.
	last := screen[strings.LastIndex(screen, "[main/0]"):]
	if strings.Contains(last, "│") {
		t.Errorf("a finished step still shows its output:\n%s", last)
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"\x1b[1;32mgreen\x1b[0m", "green"},
		{"10%\r50%\r100%", "100%"},
		{"tab\there\r", "tab here"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := clean([]byte(tt.in)); got != tt.want {
				t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// newTestTTY returns a view 80 wide writing to out, refreshed often,
// and a function moving a node from one state to another on it.
func newTestTTY(t *testing.T, out *syncBuffer) (*TTY, func(node, name string, from, to fsm.State)) {
	t.Helper()
	v, err := NewTTY(out, WithRefresh(20*time.Millisecond), WithWidth(80))
	if err != nil {
		t.Fatal(err)
	}
	return v, func(node, name string, from, to fsm.State) {
		v.Event(fsm.Event{Time: time.Now(), Node: node, Name: name, From: from, State: to})
	}
}

// TestTTYHold: while a debugger holds the view, it draws nothing, not
// even the lines of the nodes that end meanwhile; its live part is
// erased and the stopped node's line says why it is stopped, its time
// frozen. Release prints what ended and draws again, under what the
// debugger wrote; the stopped node's time leaves out the hold.
func TestTTYHold(t *testing.T) {
	var out syncBuffer
	v, ev := newTestTTY(t, &out)
	waitFor := func(s string, from int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String()[from:], s) {
			if time.Now().After(deadline) {
				t.Fatalf("the view never drew %q:\n%s", s, out.String()[from:])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ev("main/0", "run: a", fsm.Pending, fsm.CheckingCache)
	ev("main/0", "run: a", fsm.CheckingCache, fsm.Creating)
	ev("main/0", "run: a", fsm.Creating, fsm.Running)
	ev("b/0", "run: b", fsm.Pending, fsm.CheckingCache)
	waitFor("[b/0] run: b", 0)

	release := v.Hold("b/0", "at breakpoint 4")
	held := len(out.String())
	if got := terminal(out.String()); !regexp.MustCompile(`^ ‖ \[b/0\] run: b +0\.\ds stopped at breakpoint 4\n$`).MatchString(got) {
		t.Errorf("held, the terminal shows %q, want only the stopped node's line", got)
	}
	if again := v.Hold("b/0", "again"); again == nil {
		t.Fatal("a second Hold returned no release")
	} else {
		again() // does nothing: the first Hold still holds
	}
	if _, err := out.Write([]byte("(kiln) c\n")); err != nil { // the debugger speaks
		t.Fatal(err)
	}
	ev("main/0", "run: a", fsm.Running, fsm.Committing)
	ev("main/0", "run: a", fsm.Committing, fsm.Done)
	v.Output("b/0", []byte("said while held\n"))
	time.Sleep(1100 * time.Millisecond) // many frames' time, and more than a second on b/0's clock
	if got := out.String()[held:]; got != "(kiln) c\n" {
		t.Errorf("while held, the view wrote %q", got)
	}

	release()
	release() // once is enough
	waitFor("✔ [main/0] run: a", held)
	ev("b/0", "run: b", fsm.CheckingCache, fsm.Creating)
	ev("b/0", "run: b", fsm.Creating, fsm.Running)
	waitFor("│ said while held", held) // drawn live again
	ev("b/0", "run: b", fsm.Running, fsm.Committing)
	ev("b/0", "run: b", fsm.Committing, fsm.Done)
	if err := v.Close(Summary{Ran: 2, Duration: time.Second, Digest: "sha256:x"}); err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile(` +`).ReplaceAllString(terminal(out.String()), " ")
	want := regexp.MustCompile(`^ ‖ \[b/0\] run: b 0\.\ds stopped at breakpoint 4\n\(kiln\) c\n ✔ \[main/0\] run: a \d\.\ds\n ✔ \[b/0\] run: b 0\.\ds\n✔ built sha256:x in 1s: 2 steps ran, 0 cached\n$`)
	if !want.MatchString(shown) {
		t.Errorf("the terminal shows:\n%s\nwant it to match %s (b/0's time without the hold)", shown, want)
	}
}

// TestTTYService: a service's line shows it starting and ready with a
// spinner, then stopped, marked as ended well; one that never started
// (its test was cached) shows cached.
func TestTTYService(t *testing.T) {
	var out syncBuffer
	v, ev := newTestTTY(t, &out)
	const db, name = "main/test/t/service/db", "service: db (t)"
	ev(db, name, fsm.Pending, fsm.Starting)
	ev(db, name, fsm.Starting, fsm.Ready)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "ready") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	running := escapes.ReplaceAllString(out.String(), "")
	ev(db, name, fsm.Ready, fsm.Stopped)
	ev("main/test/u/service/db", "service: db (u)", fsm.Pending, fsm.Cached)
	if err := v.Close(Summary{Ran: 1, Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	if want := regexp.MustCompile(`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \[main/test/t/service/db\] service: db \(t\) +\d+\.\ds ready\n`); !want.MatchString(running) {
		t.Errorf("while ready, the view did not match %q:\n%s", want, running)
	}
	shown := regexp.MustCompile(` +`).ReplaceAllString(terminal(out.String()), " ")
	shown = regexp.MustCompile(`\b\d+\.\ds\b`).ReplaceAllString(shown, "N.Ns")
	for _, want := range []string{"✔ [main/test/t/service/db] service: db (t) N.Ns stopped\n", "✔ [main/test/u/service/db] service: db (u) CACHED\n"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, shown)
		}
	}
}
