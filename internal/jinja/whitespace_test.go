package jinja

import "testing"

// TestWhitespace: a tag's - strips Python's white space next to it
// (\x1c-\x1f, \v, \f, \x85, \u2028, \u3000 and the rest, as str.strip
// does), white space between a tag's tokens is Python's, and xmlattr
// rejects an attribute name holding ASCII white space (\v and \f
// included) but no other. testdata/whitespace.json is Jinja2's output; to
// regenerate it: cd testdata && python3 whitespace.py > whitespace.json
func TestWhitespace(t *testing.T) {
	checkGolden(t, goldenCases(t, "whitespace.json", 100))
}
