package registry

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestParseConf(t *testing.T) {
	tests := []struct {
		name, text string
		want       []Registry
		errText    string
	}{
		{name: "mirror and location", text: `
unqualified-search-registries = ["quay.io"]
[[registry]]
prefix = "docker.io"
location = "hub.example.com"
[[registry.mirror]]
location = "127.0.0.1:5000/hub"
insecure = true
`, want: []Registry{{Prefix: "docker.io", Location: "hub.example.com", Mirrors: []Mirror{{Location: "127.0.0.1:5000/hub", Insecure: true}}}}},
		{name: "location alone", text: "[[registry]]\nlocation = \"r.example.com\"\ninsecure = true\n",
			want: []Registry{{Prefix: "r.example.com", Location: "r.example.com", Insecure: true}}},
		{name: "blocked", text: "[[registry]]\nprefix = \"docker.io\"\nblocked = true\n", errText: "does not support the key registry.blocked"},
		{name: "mirror key", text: "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"all\"\n", errText: "registry.mirror.pull-from-mirror"},
		{name: "wildcard", text: "[[registry]]\nprefix = \"*.example.com\"\nlocation = \"m\"\n", errText: "wildcard"},
		{name: "v1", text: "[registries.search]\nregistries = [\"docker.io\"]\n", errText: "version 1"},
		{name: "scheme", text: "[[registry]]\nprefix = \"docker.io\"\nlocation = \"https://m\"\n", errText: "without a scheme"},
		{name: "empty", text: "[[registry]]\ninsecure = true\n", errText: "neither prefix nor location"},
		{name: "syntax", text: "[[registry]\n", errText: "reading the registries config r.conf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConf("r.conf", tc.text)
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.Registries); diff != "" {
				t.Errorf("registries (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConfPull: a name is matched in full, as docker normalises it, by
// the longest prefix that ends at a separator; mirrors come first.
func TestConfPull(t *testing.T) {
	c, err := ParseConf("r.conf", `
[[registry]]
prefix = "docker.io"
location = "hub.example.com"
[[registry.mirror]]
location = "mirror.example.com/hub"
[[registry]]
prefix = "docker.io/library/alpine"
location = "alpine.example.com/alpine"
[[registry]]
prefix = "quay.io/a"
location = "q.example.com/b"
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		pull []string
	}{
		{"busybox", []string{"mirror.example.com/hub/library/busybox:latest", "hub.example.com/library/busybox:latest"}},
		{"docker.io/user/app:1", []string{"mirror.example.com/hub/user/app:1", "hub.example.com/user/app:1"}},
		{"alpine:3.19", []string{"alpine.example.com/alpine:3.19"}},
		{"alpinex", []string{"mirror.example.com/hub/library/alpinex:latest", "hub.example.com/library/alpinex:latest"}},
		{"quay.io/a/x@sha256:" + strings.Repeat("a", 64), []string{"q.example.com/b/x@sha256:" + strings.Repeat("a", 64)}},
		{"quay.io/ab/x:1", []string{"quay.io/ab/x:1"}},
		{"127.0.0.1:5000/app", []string{"127.0.0.1:5000/app:latest"}},
	}
	for _, tc := range tests {
		ref, err := name.ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.pull, c.Pull(ref)); diff != "" {
			t.Errorf("Pull(%s) (-want +got):\n%s", tc.ref, diff)
		}
		if got, want := c.Push(ref), tc.pull[len(tc.pull)-1]; got != want {
			t.Errorf("Push(%s) = %s, want %s", tc.ref, got, want)
		}
	}
}

// TestImageFromMirror: a short name is fetched from its mirror (an
// in-process registry standing in for Docker Hub), falling back to the
// location when the mirror lacks it; a push goes to the location only.
func TestImageFromMirror(t *testing.T) {
	var mirrorGets atomic.Int64
	mirror := newRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		mirrorGets.Add(1)
		return false
	})
	location := newRegistry(t, nil)
	conf, err := ParseConf("r.conf", "[[registry]]\nprefix = \"docker.io\"\nlocation = \""+location+"/hub\"\n[[registry.mirror]]\nlocation = \""+mirror+"/m\"\n")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Options{Conf: conf})
	ctx := context.Background()
	img := randomImage(t, 1)
	want, _ := img.Digest()
	if err := remote.Write(mustRef(t, mirror+"/m/library/alpine:3.19"), img); err != nil {
		t.Fatal(err)
	}
	mirrorGets.Store(0)
	got, err := c.Image(ctx, mustRef(t, "alpine:3.19"))
	if err != nil {
		t.Fatalf("alpine:3.19 through the mirror: %v", err)
	}
	if d, _ := got.Digest(); d != want || mirrorGets.Load() == 0 {
		t.Errorf("got %s (%d requests to the mirror), want %s from the mirror", d, mirrorGets.Load(), want)
	}

	// Pushed to the location, not the mirror; then pulled from there when
	// the mirror lacks it.
	other := randomImage(t, 1)
	if err := c.Push(ctx, other, mustRef(t, "user/app:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(mustRef(t, location+"/hub/user/app:1")); err != nil {
		t.Errorf("the push did not reach the location: %v", err)
	}
	if _, err := remote.Head(mustRef(t, mirror+"/m/user/app:1")); err == nil {
		t.Error("the push reached the mirror")
	}
	if _, err := c.Head(ctx, mustRef(t, "docker.io/user/app:1")); err != nil {
		t.Errorf("user/app:1 from the location after the mirror: %v", err)
	}
	_, err = c.Image(ctx, mustRef(t, "nosuch"))
	if err == nil || !strings.Contains(err.Error(), mirror+": not found") || !strings.Contains(err.Error(), location+": not found") {
		t.Errorf("a name neither has: %v, want both 404s", err)
	}
}

func TestConfPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv(ConfEnv, "")
	user := filepath.Join(dir, "containers", "registries.conf")
	if p := ConfPath(); p == user {
		t.Fatalf("ConfPath = %s before the file exists", p)
	}
	if err := os.MkdirAll(filepath.Dir(user), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(user, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := ConfPath(); p != user {
		t.Errorf("ConfPath = %s, want the user's %s", p, user)
	}
	t.Setenv(ConfEnv, filepath.Join(dir, "nosuch.conf"))
	if _, err := LoadConf(ConfPath()); err == nil || !strings.Contains(err.Error(), ConfEnv) {
		t.Errorf("LoadConf of a missing $%s: %v", ConfEnv, err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReadmeConf: the registries.conf example of the README parses, and
// means what the README says.
func TestReadmeConf(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```toml\n")
	text, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no toml block")
	}
	c, err := ParseConf("README.md", text)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mirror.internal:5000/library/alpine:3.19", "docker.io/library/alpine:3.19"}, c.Pull(mustRef(t, "alpine:3.19"))); diff != "" {
		t.Errorf("alpine:3.19 (-want +got):\n%s", diff)
	}
	if got := c.Push(mustRef(t, "team/app:1")); got != "registry.internal/team/app:1" {
		t.Errorf("team/app:1 is pushed to %s", got)
	}
}
