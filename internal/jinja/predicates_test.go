package jinja

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode"
	"unicode/utf16"
)

// TestStrPredicates: the str methods isdecimal, isnumeric, isprintable,
// isascii, istitle and isidentifier answer as in Python's Jinja2 on the
// strings where Python's Unicode definitions differ from Go's: isnumeric
// takes the CJK numerals (category Lo), isprintable refuses format
// characters and every separator but ' ', istitle takes the digraphs
// (Lt) as capitals, isidentifier refuses what XID_Start and XID_Continue
// leave out of ID_Start and ID_Continue ('ͺ', '゛').
// testdata/predicates.json is Jinja2's output; to regenerate it:
// cd testdata && python3 predicates.py > predicates.json
func TestStrPredicates(t *testing.T) {
	checkGolden(t, goldenCases(t, "predicates.json", 90))
}

// TestStrPredicateCodePoints: on every code point but the surrogates,
// which a Go string cannot hold, isdecimal, isnumeric, isprintable,
// istitle, islower, isupper and isidentifier (alone, and after 'a':
// XID_Continue) answer as Python's do; Python's Unicode is 14, Go's 15. testdata/
// coderanges.json holds, for each, the ranges where Python says true;
// to regenerate it: cd testdata && python3 coderanges.py > coderanges.json
func TestStrPredicateCodePoints(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "coderanges.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Unicode string
		Ranges  map[string][][2]rune
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	preds := map[string]func(rune) bool{
		"isdecimal":    pyIsDecimal,
		"isnumeric":    pyIsNumeric,
		"isprintable":  pyIsPrintable,
		"istitle":      func(r rune) bool { return pyIsTitle(string(r)) },
		"islower":      func(r rune) bool { return pyIsLower(string(r)) },
		"isupper":      func(r rune) bool { return pyIsUpper(string(r)) },
		"isidentifier": func(r rune) bool { return pyIsIdentifier(string(r)) },
		"xidcontinue":  func(r rune) bool { return pyIsIdentifier("a" + string(r)) },
	}
	for name, f := range preds {
		ranges, ok := table.Ranges[name]
		if !ok || len(ranges) == 0 {
			t.Errorf("coderanges.json: no ranges for %s", name)
			continue
		}
		want := make([]bool, unicode.MaxRune+1)
		for _, g := range ranges {
			for r := g[0]; r <= g[1]; r++ {
				want[r] = true
			}
		}
		bad := 0
		for r := rune(0); r <= unicode.MaxRune; r++ {
			if utf16.IsSurrogate(r) || f(r) == want[r] {
				continue
			}
			if bad++; bad <= 5 {
				t.Errorf("%U.%s(): kiln %v, Python (Unicode %s) %v", r, name, f(r), table.Unicode, want[r])
			}
		}
		if bad > 5 {
			t.Errorf("%s: %d code points differ in all", name, bad)
		}
	}
}
