package jinja

import "unicode"

// pyNumericNotN holds the code points with a Unicode Numeric_Type that
// are not numbers (category N): the CJK ideographs that are numerals
// ('一', '万', '零'). Python's str.isnumeric is true for these and for N.
// Taken from Python 3.11's unicodedata (Unicode 14): [c for c in
// range(0x110000) if chr(c).isnumeric() and not
// unicodedata.category(chr(c)).startswith('N')].
var pyNumericNotN = &unicode.RangeTable{
	R16: r16(0x3405, 0x3483, 0x382a, 0x3b4d, 0x4e00, 0x4e03, 0x4e07, 0x4e09, 0x4e5d, 0x4e8c,
		0x4e94, 0x4e96, 0x4ebf, 0x4ec0, 0x4edf, 0x4ee8, 0x4f0d, 0x4f70, 0x5104, 0x5146, 0x5169,
		0x516b, 0x516d, 0x5341, 0x5343, 0x5344, 0x5345, 0x534c, 0x53c1, 0x53c2, 0x53c3, 0x53c4,
		0x56db, 0x58f1, 0x58f9, 0x5e7a, 0x5efe, 0x5eff, 0x5f0c, 0x5f0d, 0x5f0e, 0x5f10, 0x62fe,
		0x634c, 0x67d2, 0x6f06, 0x7396, 0x767e, 0x8086, 0x842c, 0x8cae, 0x8cb3, 0x8d30, 0x9621,
		0x9646, 0x964c, 0x9678, 0x96f6, 0xf96b, 0xf973, 0xf978, 0xf9b2, 0xf9d1, 0xf9d3, 0xf9fd),
	R32: []unicode.Range32{
		{Lo: 0x20001, Hi: 0x20001, Stride: 1}, {Lo: 0x20064, Hi: 0x20064, Stride: 1},
		{Lo: 0x200e2, Hi: 0x200e2, Stride: 1}, {Lo: 0x20121, Hi: 0x20121, Stride: 1},
		{Lo: 0x2092a, Hi: 0x2092a, Stride: 1}, {Lo: 0x20983, Hi: 0x20983, Stride: 1},
		{Lo: 0x2098c, Hi: 0x2098c, Stride: 1}, {Lo: 0x2099c, Hi: 0x2099c, Stride: 1},
		{Lo: 0x20aea, Hi: 0x20aea, Stride: 1}, {Lo: 0x20afd, Hi: 0x20afd, Stride: 1},
		{Lo: 0x20b19, Hi: 0x20b19, Stride: 1}, {Lo: 0x22390, Hi: 0x22390, Stride: 1},
		{Lo: 0x22998, Hi: 0x22998, Stride: 1}, {Lo: 0x23b1b, Hi: 0x23b1b, Stride: 1},
		{Lo: 0x2626d, Hi: 0x2626d, Stride: 1}, {Lo: 0x2f890, Hi: 0x2f890, Stride: 1},
	},
}

// r16 is the table of the single code points cs, in increasing order.
func r16(cs ...uint16) []unicode.Range16 {
	rs := make([]unicode.Range16, len(cs))
	for i, c := range cs {
		rs[i] = unicode.Range16{Lo: c, Hi: c, Stride: 1}
	}
	return rs
}

// pyUnassigned holds the code points Go's Unicode (15) assigns and the
// reference Python's (3.11, Unicode 14) does not: to Python they are
// unassigned (Cn), neither numbers nor printable nor cased. Taken from
// [c for c in range(0x110000) if unicodedata.category(chr(c)) == 'Cn'
// and Go's unicode.In(c, L, M, N, P, S, Z, Cc, Cf, Co, Cs)].
var pyUnassigned = &unicode.RangeTable{
	R16: []unicode.Range16{{Lo: 0xcf3, Hi: 0xcf3, Stride: 1}, {Lo: 0xece, Hi: 0xece, Stride: 1}},
	R32: []unicode.Range32{
		{Lo: 0x10efd, Hi: 0x10eff, Stride: 1}, {Lo: 0x1123f, Hi: 0x11241, Stride: 1},
		{Lo: 0x11b00, Hi: 0x11b09, Stride: 1}, {Lo: 0x11f00, Hi: 0x11f10, Stride: 1},
		{Lo: 0x11f12, Hi: 0x11f3a, Stride: 1}, {Lo: 0x11f3e, Hi: 0x11f59, Stride: 1},
		{Lo: 0x1342f, Hi: 0x1342f, Stride: 1}, {Lo: 0x13439, Hi: 0x13455, Stride: 1},
		{Lo: 0x1b132, Hi: 0x1b132, Stride: 1}, {Lo: 0x1b155, Hi: 0x1b155, Stride: 1},
		{Lo: 0x1d2c0, Hi: 0x1d2d3, Stride: 1}, {Lo: 0x1df25, Hi: 0x1df2a, Stride: 1},
		{Lo: 0x1e030, Hi: 0x1e06d, Stride: 1}, {Lo: 0x1e08f, Hi: 0x1e08f, Stride: 1},
		{Lo: 0x1e4d0, Hi: 0x1e4f9, Stride: 1}, {Lo: 0x1f6dc, Hi: 0x1f6dc, Stride: 1},
		{Lo: 0x1f774, Hi: 0x1f776, Stride: 1}, {Lo: 0x1f77b, Hi: 0x1f77f, Stride: 1},
		{Lo: 0x1f7d9, Hi: 0x1f7d9, Stride: 1}, {Lo: 0x1fa75, Hi: 0x1fa77, Stride: 1},
		{Lo: 0x1fa87, Hi: 0x1fa88, Stride: 1}, {Lo: 0x1faad, Hi: 0x1faaf, Stride: 1},
		{Lo: 0x1fabb, Hi: 0x1fabd, Stride: 1}, {Lo: 0x1fabf, Hi: 0x1fabf, Stride: 1},
		{Lo: 0x1face, Hi: 0x1facf, Stride: 1}, {Lo: 0x1fada, Hi: 0x1fadb, Stride: 1},
		{Lo: 0x1fae8, Hi: 0x1fae8, Stride: 1}, {Lo: 0x1faf7, Hi: 0x1faf8, Stride: 1},
		{Lo: 0x2b739, Hi: 0x2b739, Stride: 1}, {Lo: 0x31350, Hi: 0x323af, Stride: 1},
	},
}

// pyNotLowercase holds the code points assigned in both Unicodes that
// Go's (15) gives the property Lowercase and Python's (14) does not:
// modifier letters made Other_Lowercase in Unicode 15.
var pyNotLowercase = &unicode.RangeTable{
	R16: []unicode.Range16{{Lo: 0x10fc, Hi: 0x10fc, Stride: 1}, {Lo: 0xa7f2, Hi: 0xa7f4, Stride: 1}, {Lo: 0xab69, Hi: 0xab69, Stride: 1}},
}

// pyAssigned is true when Python's Unicode assigns r, or r is
// unassigned in both Go's and Python's.
func pyAssigned(r rune) bool { return !unicode.Is(pyUnassigned, r) }

// pyLowercase and pyUppercase are the properties Lowercase and
// Uppercase in Python's Unicode.
func pyLowercase(r rune) bool {
	return isLowercase(r) && pyAssigned(r) && !unicode.Is(pyNotLowercase, r)
}
func pyUppercase(r rune) bool { return isUppercase(r) && pyAssigned(r) }

// pyIsDecimal is Python's str.isdecimal for one code point: category Nd.
func pyIsDecimal(r rune) bool { return unicode.IsDigit(r) && pyAssigned(r) }

// pyIsNumeric is Python's str.isnumeric for one code point: any
// Numeric_Type, the numbers (N) and the CJK numerals.
func pyIsNumeric(r rune) bool {
	return (unicode.IsNumber(r) || unicode.Is(pyNumericNotN, r)) && pyAssigned(r)
}

// pyIsPrintable is Python's str.isprintable for one code point: not in
// the categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs, or ' '. These are
// Go's printable code points: L, M, N, P, S and ' '.
func pyIsPrintable(r rune) bool { return unicode.IsPrint(r) && pyAssigned(r) }

// pyIsASCII is Python's str.isascii for one code point.
func pyIsASCII(r rune) bool { return r < 0x80 }

// pyIsTitle is Python's str.istitle: s holds a cased code point, each
// capital (Uppercase or category Lt) follows no cased code point and
// each small letter (Lowercase) follows a cased one.
func pyIsTitle(s string) bool {
	found, prevCased := false, false
	for _, r := range s {
		switch {
		case pyUppercase(r) || unicode.IsTitle(r):
			if prevCased {
				return false
			}
			found, prevCased = true, true
		case pyLowercase(r):
			if !prevCased {
				return false
			}
			found, prevCased = true, true
		default:
			prevCased = false
		}
	}
	return found
}

// all is true when s holds only code points for which f is.
func all(s string, f func(rune) bool) bool {
	for _, r := range s {
		if !f(r) {
			return false
		}
	}
	return true
}

// pyNotXIDContinue holds the code points of ID_Continue that are not in
// XID_Continue (Unicode's UAX #31: their NFKC forms are no identifier
// continuation): U+037A, U+309B-U+309C, Arabic presentation forms.
// Taken from Python's unicodedata: the code points c of Go's ID_Continue
// for which ('a' + chr(c)).isidentifier() is false.
var pyNotXIDContinue = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x037a, Hi: 0x037a, Stride: 1}, {Lo: 0x309b, Hi: 0x309c, Stride: 1},
		{Lo: 0xfc5e, Hi: 0xfc63, Stride: 1}, {Lo: 0xfdfa, Hi: 0xfdfb, Stride: 1},
		{Lo: 0xfe70, Hi: 0xfe7e, Stride: 2},
	},
}

// pyNotXIDStart holds the code points of ID_Start that are not in
// XID_Start beyond pyNotXIDContinue: U+0E33, U+0EB3, U+FF9E, U+FF9F,
// which continue an identifier but do not start one.
var pyNotXIDStart = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x0e33, Hi: 0x0e33, Stride: 1}, {Lo: 0x0eb3, Hi: 0x0eb3, Stride: 1},
		{Lo: 0xff9e, Hi: 0xff9f, Stride: 1},
	},
}

// idStart is Unicode's ID_Start: the letters, the letter numbers and
// Other_ID_Start, less Pattern_Syntax and Pattern_White_Space.
func idStart(r rune) bool {
	return unicode.In(r, unicode.L, unicode.Nl, unicode.Other_ID_Start) && !unicode.In(r, unicode.Pattern_Syntax, unicode.Pattern_White_Space)
}

// idContinue is Unicode's ID_Continue: ID_Start, the marks Mn and Mc, the
// decimal digits, the connector punctuation and Other_ID_Continue, less
// Pattern_Syntax and Pattern_White_Space.
func idContinue(r rune) bool {
	return (idStart(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc, unicode.Other_ID_Continue)) &&
		!unicode.In(r, unicode.Pattern_Syntax, unicode.Pattern_White_Space)
}

// pyXIDContinue and pyXIDStart are Unicode's XID_Continue and XID_Start
// in Python's Unicode.
func pyXIDContinue(r rune) bool {
	return idContinue(r) && !unicode.Is(pyNotXIDContinue, r) && pyAssigned(r)
}
func pyXIDStart(r rune) bool {
	return idStart(r) && !unicode.Is(pyNotXIDContinue, r) && !unicode.Is(pyNotXIDStart, r) && pyAssigned(r)
}

// pyIsIdentifier is Python's str.isidentifier: s starts with XID_Start
// or '_' and goes on with XID_Continue. Python's keywords are
// identifiers to it, and it does not normalize s.
func pyIsIdentifier(s string) bool {
	for i, r := range s {
		if i == 0 && !pyXIDStart(r) && r != '_' || i > 0 && !pyXIDContinue(r) {
			return false
		}
	}
	return s != ""
}
