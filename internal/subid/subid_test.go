package subid

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader("# comment\nalice:100000:65536\n\n  1001:200000:10  \nkiln:0:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{"alice", 100000, 65536}, {"1001", 200000, 10}, {"kiln", 0, 0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	for _, tc := range []struct{ file, err string }{
		{"alice:1:2:3\n", "line 1: want name:start:count"},
		{"ok:1:2\nalice:x:5\n", "line 2: bad range"},
		{"alice:-1:5\n", "line 1: bad range"},
		{"alice:4294967296:5\n", "line 1: bad range"},
	} {
		if _, err := Parse(strings.NewReader(tc.file)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one with %q", tc.file, err, tc.err)
		}
	}
}

func TestReadMissing(t *testing.T) {
	es, err := Read(filepath.Join(t.TempDir(), "subuid"))
	if err != nil || es != nil {
		t.Errorf("Read of a missing file = %v, %v; want nothing", es, err)
	}
}
