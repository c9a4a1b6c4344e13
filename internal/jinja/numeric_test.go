package jinja

import (
	"strings"
	"testing"
	"unicode"
)

// TestNumeric: the str methods isdigit, isalpha and isalnum, and the
// int and float filters, answer as in Python's Jinja2 on the strings
// where Python's Unicode definitions differ from Go's: isdigit is
// Numeric_Type Digit or Decimal (superscripts, circled digits), isalnum
// takes any number (fractions, Roman numerals); int and float read the
// decimal digits of any script and strip ASCII and Unicode white space
// but not \x1c-\x1f. testdata/numeric.json is Jinja2's output; to
// regenerate it: cd testdata && python3 numeric.py > numeric.json
func TestNumeric(t *testing.T) {
	checkGolden(t, goldenCases(t, "numeric.json", 200))
}

// TestUnsupportedStrMethods: the str methods kiln does not implement
// (no str predicate is left among them) fail with an error naming them
// rather than answering.
func TestUnsupportedStrMethods(t *testing.T) {
	for _, m := range []string{"casefold", "expandtabs", "maketrans", "rpartition", "translate", "rindex"} {
		_, err := renderWith(t, nil, "{{ s."+m+"() }}", map[string]any{"s": "12"})
		if err == nil || !strings.Contains(err.Error(), "str."+m+"() is not supported") {
			t.Errorf("s.%s(): error %v, want one naming %s", m, err, m)
		}
	}
}

// TestDecimalRuns: pyDecimal's premise holds in Go's Unicode tables:
// each range of unicode.Nd is contiguous runs of ten digits, 0 to 9, so
// a digit's value is its offset from the range's start, modulo 10.
func TestDecimalRuns(t *testing.T) {
	check := func(lo, hi, stride uint32) {
		if stride != 1 || (hi-lo+1)%10 != 0 {
			t.Errorf("unicode.Nd range %#x-%#x stride %d is not runs of ten digits", lo, hi, stride)
		}
	}
	for _, g := range unicode.Nd.R16 {
		check(uint32(g.Lo), uint32(g.Hi), uint32(g.Stride))
	}
	for _, g := range unicode.Nd.R32 {
		check(g.Lo, g.Hi, g.Stride)
	}
	// values from Python's unicodedata.decimal
	for r, want := range map[rune]rune{'7': 7, 0x663: 3, 0xff19: 9, 0x1d7d7: 9, 0x1d7ec: 0, 0x1d7ff: 9, 0xe53: 3, 0x11066: 0, 'x': -1, 0xb2: -1} {
		d, ok := pyDecimal(r)
		if !ok {
			d = -1
		}
		if d != want {
			t.Errorf("pyDecimal(%U) = %d, %v; want %d", r, d, ok, want)
		}
	}
}

// TestIntOutOfRange: where Python's int filter gives an integer beyond
// 64 bits (Python: '99999999999999999999' | int is 99999999999999999999,
// '1e20' | int is 100000000000000000000), kiln, whose integers are 64-bit,
// fails with an error naming the value rather than giving another number.
func TestIntOutOfRange(t *testing.T) {
	for _, tc := range []struct{ tpl, s string }{
		{"{{ s | int }}", "99999999999999999999"},
		{"{{ s | int }}", "-9223372036854775809"},
		{"{{ s | int(base=16) }}", "ffffffffffffffffff"},
		{"{{ s | int }}", "1e20"},
		{"{{ s | float | int }}", "9223372036854775807"},
		{"{{ s | float | int }}", "-1e19"},
	} {
		got, err := renderWith(t, nil, tc.tpl, map[string]any{"s": tc.s})
		if err == nil || !strings.Contains(err.Error(), "64-bit") {
			t.Errorf("%s with s=%q: got %q, error %v; want an error on 64-bit integers", tc.tpl, tc.s, got, err)
		}
	}
	// the bounds themselves, and signs, as Python gives them
	for _, tc := range []struct{ tpl, s, want string }{
		{"{{ s | int }}", "9223372036854775807", "9223372036854775807"},
		{"{{ s | int }}", "-9223372036854775808", "-9223372036854775808"},
		{"{{ s | float | int }}", "-9223372036854775808", "-9223372036854775808"},
		{"{{ s | int(base=16) }}", "-8000000000000000", "-9223372036854775808"},
		{"{{ s | int(-1) }}", "+-5", "-1"},
		{"{{ s | int(-1) }}", "-+5", "-1"},
	} {
		got, err := renderWith(t, nil, tc.tpl, map[string]any{"s": tc.s})
		if err != nil || got != tc.want {
			t.Errorf("%s with s=%q: got %q, error %v; want %q", tc.tpl, tc.s, got, err, tc.want)
		}
	}
}
