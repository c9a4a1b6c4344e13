package jinja

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestCasing: the case, line and white-space operations of strings
// (the filters upper, lower, capitalize, title, indent, wordwrap, trim,
// striptags and wordcount; the str methods upper, lower, capitalize,
// title, swapcase, isupper, islower, splitlines, split, rsplit, strip and
// isspace; the tests upper and lower; case-insensitive sort, unique, min
// and max) render as in Python's Jinja2: full Unicode case mapping, final
// sigma, title case, Python's line boundaries, white space and \w.
// testdata/casing.json is Jinja2's output; to regenerate it:
// cd testdata && python3 casing.py > casing.json
func TestCasing(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "casing.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ Template, S, Want string }
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 100 {
		t.Fatalf("%d cases, want at least 100", len(cases))
	}
	for _, tc := range cases {
		got, err := renderWith(t, nil, tc.Template, map[string]any{"s": tc.S})
		if err != nil {
			t.Errorf("%s with s=%q: %v", tc.Template, tc.S, err)
			continue
		}
		if got != tc.Want {
			t.Errorf("%s with s=%q:\n got %q\nwant %q", tc.Template, tc.S, got, tc.Want)
		}
	}
}
