package platform

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"linux/amd64", "linux/amd64", ""},
		{"linux/arm64", "linux/arm64", ""},
		{"linux/arm64/v8", "linux/arm64", ""},
		{"linux/aarch64", "linux/arm64", ""},
		{"Linux/X86_64", "linux/amd64", ""},
		{"linux/arm", "linux/arm/v7", ""},
		{"linux/arm/v6", "linux/arm/v6", ""},
		{"arm64", "linux/arm64", ""},
		{"windows/amd64", "", "Linux images only"},
		{"linux/", "", "want os/arch"},
		{"a/b/c/d", "", "want os/arch"},
	} {
		p, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, %v; want an error saying %q", tc.in, p, err, tc.err)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
}

func TestParseList(t *testing.T) {
	ps, err := ParseList("linux/amd64, linux/arm64,linux/aarch64")
	if err != nil || len(ps) != 2 || ps[0].String() != "linux/amd64" || ps[1].String() != "linux/arm64" {
		t.Errorf("ParseList = %v, %v; want linux/amd64 and linux/arm64 once each", ps, err)
	}
	if _, err := ParseList(" , "); err == nil {
		t.Error("ParseList of no platform: no error")
	}
}

func TestMatches(t *testing.T) {
	arm7, _ := Parse("linux/arm/v7")
	arm6, _ := Parse("linux/arm/v6")
	arm64, _ := Parse("linux/arm64")
	if !arm64.Matches(FromOCI("linux", "arm64", "v8")) || arm7.Matches(arm6) || arm64.Matches(FromOCI("linux", "amd64", "")) {
		t.Error("Matches: wrong")
	}
}
