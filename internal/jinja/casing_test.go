package jinja

import "testing"

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
	checkGolden(t, goldenCases(t, "casing.json", 100))
}
