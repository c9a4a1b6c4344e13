package jinja

import (
	"strings"
	"unicode"
)

// pyDigitsNotNd holds the code points with Unicode Numeric_Type=Digit
// that are not decimal digits (category Nd): superscripts, subscripts,
// circled and parenthesized digits and the like. Python's str.isdigit is
// true for these and for Nd; Go's unicode.IsDigit only for Nd. Taken from
// Python 3.11's unicodedata (Unicode 14): [c for c in range(0x110000)
// if chr(c).isdigit() and unicodedata.category(chr(c)) != 'Nd'].
var pyDigitsNotNd = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x00b2, Hi: 0x00b3, Stride: 1}, {Lo: 0x00b9, Hi: 0x00b9, Stride: 1},
		{Lo: 0x1369, Hi: 0x1371, Stride: 1}, {Lo: 0x19da, Hi: 0x19da, Stride: 1},
		{Lo: 0x2070, Hi: 0x2070, Stride: 1}, {Lo: 0x2074, Hi: 0x2079, Stride: 1},
		{Lo: 0x2080, Hi: 0x2089, Stride: 1}, {Lo: 0x2460, Hi: 0x2468, Stride: 1},
		{Lo: 0x2474, Hi: 0x247c, Stride: 1}, {Lo: 0x2488, Hi: 0x2490, Stride: 1},
		{Lo: 0x24ea, Hi: 0x24ea, Stride: 1}, {Lo: 0x24f5, Hi: 0x24fd, Stride: 1},
		{Lo: 0x24ff, Hi: 0x24ff, Stride: 1}, {Lo: 0x2776, Hi: 0x277e, Stride: 1},
		{Lo: 0x2780, Hi: 0x2788, Stride: 1}, {Lo: 0x278a, Hi: 0x2792, Stride: 1},
	},
	R32: []unicode.Range32{
		{Lo: 0x10a40, Hi: 0x10a43, Stride: 1}, {Lo: 0x10e60, Hi: 0x10e68, Stride: 1},
		{Lo: 0x11052, Hi: 0x1105a, Stride: 1}, {Lo: 0x1f100, Hi: 0x1f10a, Stride: 1},
	},
}

// pyIsDigit is Python's str.isdigit for one code point: Numeric_Type
// Digit or Decimal.
func pyIsDigit(r rune) bool { return unicode.IsDigit(r) || unicode.Is(pyDigitsNotNd, r) }

// pyIsAlnum is Python's str.isalnum for one code point: isalpha (the
// letters, L) or isnumeric (any Numeric_Type, which outside the letters
// is exactly the numbers, N: fractions, Roman numerals, superscripts).
func pyIsAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// pyDecimal is the value of r, a decimal digit (category Nd) of any
// script. Unicode encodes each script's decimal digits as a contiguous
// run from 0 to 9, and each range of unicode.Nd begins with a 0.
func pyDecimal(r rune) (rune, bool) {
	for _, g := range unicode.Nd.R16 {
		if rune(g.Lo) <= r && r <= rune(g.Hi) {
			return (r - rune(g.Lo)) % 10, true
		}
	}
	for _, g := range unicode.Nd.R32 {
		if rune(g.Lo) <= r && r <= rune(g.Hi) {
			return (r - rune(g.Lo)) % 10, true
		}
	}
	return 0, false
}

// pyNumText is s as Python's int(s) and float(s) read it: each non-ASCII
// white-space code point becomes a space and each non-ASCII decimal digit
// its ASCII digit, then ASCII white space is stripped from both ends.
// ASCII \x1c-\x1f, white space to str.isspace, are kept, as Python does.
func pyNumText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch d, ok := pyDecimal(r); {
		case r < 0x80:
			b.WriteRune(r)
		case pyIsSpace(r):
			b.WriteByte(' ')
		case ok:
			b.WriteRune('0' + d)
		default:
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), " \t\n\v\f\r")
}
