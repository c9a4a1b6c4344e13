package jinja

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestCasing: the case and line operations of strings (the filters
// upper, lower, capitalize, title, indent and wordwrap, the str methods
// of the same names with swapcase, isupper, islower and splitlines, the
// tests upper and lower, and case-insensitive comparisons) render as in
// Python's Jinja2: full Unicode case mapping, final sigma, title case,
// and Python's line boundaries. testdata/casing.json is Jinja2's output;
// to regenerate it: cd testdata && python3 casing.py > casing.json
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
