package cache

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/key.golden")

func digestOf(s string) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(s, 64/len(s))}
}

func baseInput() KeyInput {
	return KeyInput{
		Parent:  BaseKey(digestOf("ab")),
		Kind:    "copy",
		Args:    []string{"src/", "/app/", "0644", "0:0"},
		Env:     []string{"PATH=/usr/bin:/bin", "A=1"},
		Workdir: "/app",
		User:    "1000",
		Shell:   []string{"/bin/sh", "-c"},
		Network: "none",
		Inputs:  []v1.Hash{digestOf("01"), digestOf("02")},
	}
}

// TestComputeKeyChanges: changing any field (or moving bytes between
// fields or list elements) changes the key.
func TestComputeKeyChanges(t *testing.T) {
	base := ComputeKey(baseInput())
	if again := ComputeKey(baseInput()); again != base {
		t.Fatalf("ComputeKey is not stable: %s then %s", base, again)
	}
	seen := map[Key]string{base: "base"}
	for _, tc := range []struct {
		name   string
		change func(*KeyInput)
	}{
		{"parent", func(in *KeyInput) { in.Parent = BaseKey(digestOf("cd")) }},
		{"parent scratch", func(in *KeyInput) { in.Parent = BaseKey(v1.Hash{}) }},
		{"kind", func(in *KeyInput) { in.Kind = "template" }},
		{"args value", func(in *KeyInput) { in.Args[3] = "0:1" }},
		{"args order", func(in *KeyInput) { in.Args[0], in.Args[1] = in.Args[1], in.Args[0] }},
		{"args joined", func(in *KeyInput) { in.Args = []string{"src/ /app/", "0644", "0:0"} }},
		{"args concatenated", func(in *KeyInput) { in.Args = []string{"src//app/", "0644", "0:0"} }},
		{"args extra empty", func(in *KeyInput) { in.Args = append(in.Args, "") }},
		{"args none", func(in *KeyInput) { in.Args = nil }},
		{"env value", func(in *KeyInput) { in.Env[1] = "A=2" }},
		{"env order", func(in *KeyInput) { in.Env[0], in.Env[1] = in.Env[1], in.Env[0] }},
		{"env moved to args", func(in *KeyInput) { in.Args = append(in.Args, in.Env[0]); in.Env = in.Env[1:] }},
		{"workdir", func(in *KeyInput) { in.Workdir = "/app/" }},
		{"workdir and user swapped", func(in *KeyInput) { in.Workdir, in.User = in.User, in.Workdir }},
		{"user", func(in *KeyInput) { in.User = "1001" }},
		{"user empty", func(in *KeyInput) { in.User = "" }},
		{"shell", func(in *KeyInput) { in.Shell = []string{"/bin/bash", "-c"} }},
		{"shell none", func(in *KeyInput) { in.Shell = nil }},
		{"network", func(in *KeyInput) { in.Network = "host" }},
		{"input digest", func(in *KeyInput) { in.Inputs[1] = digestOf("03") }},
		{"input order", func(in *KeyInput) { in.Inputs[0], in.Inputs[1] = in.Inputs[1], in.Inputs[0] }},
		{"input removed", func(in *KeyInput) { in.Inputs = in.Inputs[:1] }},
		{"input algorithm", func(in *KeyInput) { in.Inputs[0].Algorithm = "sha512" }},
		{"source date epoch", func(in *KeyInput) { in.Epoch = "1700000000" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			tc.change(&in)
			k := ComputeKey(in)
			if other, ok := seen[k]; ok {
				t.Errorf("key %s equals the key of %q", k, other)
			}
			seen[k] = tc.name
		})
	}
}

func TestComputeKeyNilEqualsEmpty(t *testing.T) {
	a := KeyInput{Kind: "run", Args: []string{"true"}}
	b := KeyInput{Kind: "run", Args: []string{"true"}, Env: []string{}, Shell: []string{}, Inputs: []v1.Hash{}}
	if ComputeKey(a) != ComputeKey(b) {
		t.Error("nil and empty lists give different keys")
	}
}

func TestBaseKey(t *testing.T) {
	if BaseKey(digestOf("ab")) == BaseKey(digestOf("ac")) {
		t.Error("two image digests give one base key")
	}
	if a, b := BaseKey(v1.Hash{}), BaseKey(v1.Hash{}); a != b {
		t.Errorf("the scratch key is not fixed: %s then %s", a, b)
	}
	if BaseKey(v1.Hash{}) == BaseKey(digestOf("ab")) {
		t.Error("scratch has an image's key")
	}
	// A base key is not the key of some step: the encodings start apart.
	if BaseKey(v1.Hash{}) == ComputeKey(KeyInput{}) {
		t.Error("scratch has the key of an empty step")
	}
}

// TestKeyGolden pins the encoding: if it changes, records written by an
// older kiln would be misread. Change keyVersion with it, then run
// go test ./cache/ -run TestKeyGolden -update.
func TestKeyGolden(t *testing.T) {
	got := strings.Join([]string{
		"scratch " + BaseKey(v1.Hash{}).String(),
		"base " + BaseKey(digestOf("ab")).String(),
		"step " + ComputeKey(baseInput()).String(),
		"empty " + ComputeKey(KeyInput{}).String(),
	}, "\n") + "\n"
	p := filepath.Join("testdata", "key.golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestParseKey(t *testing.T) {
	k := ComputeKey(baseInput())
	got, err := ParseKey(k.String())
	if err != nil || got != k {
		t.Errorf("ParseKey(%s) = %s, %v", k, got, err)
	}
	for _, bad := range []string{"", "ab", strings.Repeat("g", 64), k.String() + "00"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q): no error", bad)
		}
	}
}
