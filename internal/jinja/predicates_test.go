package jinja

import "testing"

// TestStrPredicates: the str methods isdecimal, isnumeric, isprintable,
// isascii and istitle answer as in Python's Jinja2 on the strings where
// Python's Unicode definitions differ from Go's: isnumeric takes the CJK
// numerals (category Lo), isprintable refuses format characters and
// every separator but ' ', istitle takes the digraphs (Lt) as capitals.
// testdata/predicates.json is Jinja2's output; to regenerate it:
// cd testdata && python3 predicates.py > predicates.json
func TestStrPredicates(t *testing.T) {
	checkGolden(t, goldenCases(t, "predicates.json", 60))
}
