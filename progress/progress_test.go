package progress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/lifecycle"
)

func TestPlain(t *testing.T) {
	var b bytes.Buffer
	p := NewPlain(&b)
	now := time.Now()
	p.Event(lifecycle.Event{Time: now, Node: "main/0", Name: "run: echo hi", From: lifecycle.Pending, State: lifecycle.CheckingCache})
	p.Event(lifecycle.Event{Time: now, Node: "main/0", Name: "run: echo hi", From: lifecycle.Creating, State: lifecycle.Running})
	p.Output("main/0", []byte("hel"))
	p.Output("main/0", []byte("lo\nwor"))
	p.Output("main/0", []byte("ld\n"))
	p.Event(lifecycle.Event{Time: now, Node: "main/0", Name: "run: echo hi", From: lifecycle.Committing, State: lifecycle.Done, Duration: 1500 * time.Millisecond})
	p.Event(lifecycle.Event{Time: now, Node: "main/1", Name: "run: false", From: lifecycle.Running, State: lifecycle.Failed, Error: errors.New("exit status 1\nmore").Error()})
	want := "[main/0] running: run: echo hi\n[main/0] | hello\n[main/0] | world\n[main/0] done: run: echo hi (1.5s)\n[main/1] failed: run: false (0s): exit status 1\n"
	if b.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	j := NewJSON(&b)
	j.Event(lifecycle.Event{Time: time.Unix(0, 0), Node: "main/0", Name: "run: x", From: lifecycle.Pending, State: lifecycle.CheckingCache, CacheKey: "ab", Duration: time.Millisecond})
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
		got[1]["type"] != "output" || !strings.Contains(got[1]["output"].(string), "out") {
		t.Errorf("json events: %v", got)
	}
}
