package jinja

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenCase is one case of a golden table written by Python's Jinja2:
// Template rendered with s=S gives Want or, when Err is set, fails with
// an error holding Err.
type goldenCase struct{ Template, S, Want, Err string }

// goldenCases reads testdata/name, a golden table, and checks it holds
// at least min cases.
func goldenCases(t *testing.T, name string, min int) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < min {
		t.Fatalf("%s: %d cases, want at least %d", name, len(cases), min)
	}
	return cases
}

// checkGolden renders each case and compares it with Jinja2's output.
func checkGolden(t *testing.T, cases []goldenCase) {
	t.Helper()
	for _, tc := range cases {
		got, err := renderWith(t, nil, tc.Template, map[string]any{"s": tc.S})
		if tc.Err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.Err) {
				t.Errorf("%s with s=%q: got %q, error %v; want an error holding %q", tc.Template, tc.S, got, err, tc.Err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s with s=%q: %v", tc.Template, tc.S, err)
			continue
		}
		if got != tc.Want {
			t.Errorf("%s with s=%q:\n got %q\nwant %q", tc.Template, tc.S, got, tc.Want)
		}
	}
}
