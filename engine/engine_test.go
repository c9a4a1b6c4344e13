package engine

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"a": true, "run-1a2b": true, "A.b_c-9": true, strings.Repeat("x", 128): true,
		"": false, "-a": false, ".a": false, "_a": false, "a/b": false, "../x": false,
		"a b": false, strings.Repeat("x", 129): false, "é": false,
	} {
		if err := ValidID(id); (err == nil) != ok {
			t.Errorf("ValidID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestWritable(t *testing.T) {
	for _, tc := range []struct {
		mounts []Mount
		want   string
		err    bool
	}{
		{[]Mount{{Type: "overlay", Options: []string{"lowerdir=/l", "upperdir=/u", "workdir=/w"}}}, "/u", false},
		{[]Mount{{Type: "bind", Source: "/fs"}}, "/fs", false},
		{[]Mount{{Type: "overlay", Options: []string{"lowerdir=/l"}}}, "", true},
		{[]Mount{{Type: "bind", Source: "/x", Target: "/mnt"}}, "", true},
		{nil, "", true},
	} {
		got, err := Writable(tc.mounts)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("Writable(%+v) = %q, %v; want %q, error %v", tc.mounts, got, err, tc.want, tc.err)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	for in, want := range map[string]Network{"": NetworkHost, "host": NetworkHost, "none": NetworkNone} {
		if got, err := ParseNetwork(in); err != nil || got != want {
			t.Errorf("ParseNetwork(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseNetwork("bridge"); err == nil {
		t.Error("ParseNetwork(bridge): no error")
	}
}
