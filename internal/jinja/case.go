package jinja

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Python's str case operations, code point by code point as CPython does
// them: the full case mappings of Unicode's SpecialCasing (ß upper-cases
// to SS, İ lower-cases to i̇, ǆ title-cases to ǅ), the final sigma of
// lower(), and Python's properties cased, lowercase and uppercase.

// pyUpper is Python's str.upper. x/text's root-locale upper mapping
// has no context: each code point's full upper case, as in Python.
func pyUpper(s string) string { return cases.Upper(language.Und).String(s) }

// pyLower is Python's str.lower.
func pyLower(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		writeLower(&b, s, i, r)
	}
	return b.String()
}

// writeLower writes the full lower case of r, found at byte i of s: a
// final Σ (after a cased code point and not before one, case-ignorable
// ones between) is ς.
func writeLower(b *strings.Builder, s string, i int, r rune) {
	switch r {
	case 'İ':
		b.WriteString("i\u0307")
	case 'Σ':
		if finalSigma(s, i) {
			b.WriteRune('ς')
		} else {
			b.WriteRune('σ')
		}
	default:
		b.WriteRune(unicode.ToLower(r))
	}
}

func finalSigma(s string, i int) bool {
	before := strings.TrimRightFunc(s[:i], caseIgnorable)
	if r, n := utf8.DecodeLastRuneInString(before); n == 0 || !cased(r) {
		return false
	}
	after := strings.TrimLeftFunc(s[i+len("Σ"):], caseIgnorable)
	r, n := utf8.DecodeRuneInString(after)
	return n == 0 || !cased(r)
}

// pyCapitalize is Python's str.capitalize: the first code point in title
// case, the others in lower case.
func pyCapitalize(s string) string {
	var b strings.Builder
	title := cases.Title(language.Und)
	for i, r := range s {
		if i == 0 {
			b.WriteString(title.String(string(r)))
		} else {
			writeLower(&b, s, i, r)
		}
	}
	return b.String()
}

// pyTitle is Python's str.title: a code point after a cased one in lower
// case, any other in title case.
func pyTitle(s string) string {
	var b strings.Builder
	title := cases.Title(language.Und)
	prev := false
	for i, r := range s {
		if prev {
			writeLower(&b, s, i, r)
		} else {
			b.WriteString(title.String(string(r)))
		}
		prev = cased(r)
	}
	return b.String()
}

// pySwapcase is Python's str.swapcase: uppercase code points in lower
// case, lowercase ones in upper case (a title-case one stays).
func pySwapcase(s string) string {
	var b strings.Builder
	upper := cases.Upper(language.Und)
	for i, r := range s {
		switch {
		case isUppercase(r):
			writeLower(&b, s, i, r)
		case isLowercase(r):
			b.WriteString(upper.String(string(r)))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pyIsLower is Python's str.islower: a lowercase code point and no
// uppercase or title-case one.
func pyIsLower(s string) bool { return caseOnly(s, pyLowercase, pyUppercase) }

// pyIsUpper is Python's str.isupper.
func pyIsUpper(s string) bool { return caseOnly(s, pyUppercase, pyLowercase) }

func caseOnly(s string, is, other func(rune) bool) bool {
	found := false
	for _, r := range s {
		if other(r) || unicode.IsTitle(r) {
			return false
		}
		found = found || is(r)
	}
	return found
}

// isLowercase and isUppercase are Unicode's properties Lowercase and
// Uppercase, which Python's islower and isupper use.
func isLowercase(r rune) bool { return unicode.IsLower(r) || unicode.Is(unicode.Other_Lowercase, r) }
func isUppercase(r rune) bool { return unicode.IsUpper(r) || unicode.Is(unicode.Other_Uppercase, r) }

// cased is Unicode's property Cased.
func cased(r rune) bool { return isLowercase(r) || isUppercase(r) || unicode.IsTitle(r) }

// caseIgnorable is Unicode's property Case_Ignorable: the categories Mn,
// Me, Cf, Lm and Sk, and the word-break classes MidLetter, MidNumLet
// and Single_Quote.
func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		strings.ContainsRune("'.:\u00b7\u0387\u055f\u05f4\u2018\u2019\u2024\u2027\ufe13\ufe52\ufe55\uff07\uff0e\uff1a", r)
}
