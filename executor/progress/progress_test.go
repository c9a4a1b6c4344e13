package progress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/fsm"
)

func TestPlain(t *testing.T) {
	var b bytes.Buffer
	p := NewPlain(&b)
	now := time.Now()
	p.Event(fsm.Event{Time: now, Node: "main/0", Name: "run: echo hi", From: fsm.Pending, State: fsm.CheckingCache})
	p.Event(fsm.Event{Time: now, Node: "main/0", Name: "run: echo hi", From: fsm.Creating, State: fsm.Running})
	p.Output("main/0", []byte("hel"))
	p.Output("main/0", []byte("lo\nwor"))
	p.Output("main/0", []byte("ld\n"))
	p.Event(fsm.Event{Time: now, Node: "main/0", Name: "run: echo hi", From: fsm.Committing, State: fsm.Done, Duration: 6 * time.Millisecond, Elapsed: 1500 * time.Millisecond})
	p.Event(fsm.Event{Time: now, Node: "main/1", Name: "run: false", From: fsm.Running, State: fsm.Failed, Error: errors.New("exit status 1\nmore").Error()})
	want := "[main/0] running: run: echo hi\n[main/0] | hello\n[main/0] | world\n[main/0] done: run: echo hi (1.5s)\n[main/1] failed: run: false (0s): exit status 1\n"
	if b.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	j := NewJSON(&b)
	j.Event(fsm.Event{Time: time.Unix(0, 0), Node: "main/0", Name: "run: x", From: fsm.Pending, State: fsm.CheckingCache, CacheKey: "ab", Duration: time.Millisecond})
	j.Output("main/0", []byte("out\n"))
	s := bufio.NewScanner(&b)
	var got []map[string]any
	for s.Scan() {
		var m map[string]any
		if err := json.Unmarshal(s.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", s.Text(), err)
		}
		got = append(got, m)
	}
	if len(got) != 2 || got[0]["state"] != "checking-cache" || got[0]["cache_key"] != "ab" || got[0]["duration_ms"] != 1.0 ||
		got[0]["elapsed_ms"] != 0.0 || got[1]["type"] != "output" || !strings.Contains(got[1]["output"].(string), "out") {
		t.Errorf("json events: %v", got)
	}
}

// TestJSONResult checks the object that ends a build, on success and on
// failure (naming the first node that failed), and that a state event
// carries elapsed_ms beside duration_ms.
func TestJSONResult(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []fsm.Event
		res    Result
		want   string
	}{
		{"success", nil, Result{Digest: "sha256:ab"}, `{"type":"result","time":"T","exit_code":0,"digest":"sha256:ab"}`},
		{"failure", []fsm.Event{
			{Node: "main/1", Name: "run: false", From: fsm.Running, State: fsm.Failed, Error: "exit status 1", Elapsed: 2500 * time.Millisecond, Duration: 5 * time.Millisecond},
			{Node: "main/2", Name: "run: x", From: fsm.Running, State: fsm.Failed, Error: "exit status 2"},
		}, Result{ExitCode: 1, Err: errors.New("build failed: exit status 1")},
			`{"type":"result","time":"T","exit_code":1,"node":"main/1","name":"run: false","error":"build failed: exit status 1"}`},
		{"interrupted", nil, Result{ExitCode: 130, Err: errors.New("interrupted")}, `{"type":"result","time":"T","exit_code":130,"error":"interrupted"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			j := NewJSON(&b)
			for _, e := range tc.events {
				j.Event(e)
			}
			j.Result(tc.res)
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if len(tc.events) > 0 && !strings.Contains(lines[0], `"duration_ms":5,"elapsed_ms":2500,`) {
				t.Errorf("state event %s, want duration_ms 5 and elapsed_ms 2500", lines[0])
			}
			last := regexp.MustCompile(`"time":"[^"]*"`).ReplaceAllString(lines[len(lines)-1], `"time":"T"`)
			if last != tc.want {
				t.Errorf("result:\n%s\nwant:\n%s", last, tc.want)
			}
		})
	}
}

// writeCounter counts the writes made to it and their bytes.
type writeCounter struct{ writes, bytes int }

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	w.bytes += len(p)
	return len(p), nil
}

// TestPlainOutputAtSpeed checks that Plain writes a chunk of output in
// one write, however many lines it holds (a write per line made step
// output crawl), that a line longer than maxLine is printed in pieces
// instead of growing without bound, and that a last line without a
// newline is printed when its node ends.
func TestPlainOutputAtSpeed(t *testing.T) {
	var w writeCounter
	p := NewPlain(&w)
	chunk := bytes.Repeat([]byte(strings.Repeat("a", 99)+"\n"), 1000)
	p.Output("n", chunk)
	if w.writes != 1 || w.bytes != 1000*len("[n] | \n"+strings.Repeat("a", 99)) {
		t.Errorf("1000 lines in one chunk: %d writes of %d bytes in all, want 1 of %d", w.writes, w.bytes, 1000*106)
	}

	var b bytes.Buffer
	p = NewPlain(&b)
	long := bytes.Repeat([]byte("x"), 4096)
	for range 100 { // a line of 400 KiB, no newline
		p.Output("n", long)
	}
	if got := len(p.partial["n"]); got > maxLine {
		t.Errorf("Plain holds %d bytes of an unfinished line, want at most %d", got, maxLine)
	}
	p.Output("n", []byte("\nend"))
	p.Event(fsm.Event{Node: "n", Name: "run: x", From: fsm.Running, State: fsm.Done})
	var pieces int
	for l := range strings.SplitSeq(strings.TrimSuffix(b.String(), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "[n] | x"):
			if len(l) > len("[n] | ")+maxLine {
				t.Errorf("a piece of %d bytes, want at most %d", len(l), len("[n] | ")+maxLine)
			}
			pieces += len(l) - len("[n] | ")
		case l == "[n] | end", l == "[n] done: run: x (0s)":
		default:
			t.Errorf("unexpected line %.80q", l)
		}
	}
	if pieces != 100*4096 {
		t.Errorf("the pieces hold %d bytes of the long line, want %d", pieces, 100*4096)
	}
	if !strings.HasSuffix(b.String(), "[n] | end\n[n] done: run: x (0s)\n") {
		t.Errorf("the last, unfinished line was not printed before the node's end:\n%.200s", b.String()[max(0, b.Len()-200):])
	}
}
