package main

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/image/registry"
)

// startHub starts go-containerregistry's in-memory registry on 127.0.0.1
// (plain HTTP), to stand in for Docker Hub through a registries.conf, and
// returns its host:port.
func startHub(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// useRegistriesConf makes kiln read text as its registries.conf for the
// rest of the test.
func useRegistriesConf(t *testing.T, text string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(registry.ConfEnv, p)
}

// dockerHubMirror starts a registry that holds src's busybox as Docker
// Hub's alpine (latest and 3.19) and makes it Docker Hub's mirror, with
// Docker Hub's own address refusing connections. It returns its host.
func dockerHubMirror(t *testing.T, src string) string {
	t.Helper()
	hub := startHub(t)
	mustKiln(t, src, "push", "busybox", hub+"/library/alpine:latest")
	mustKiln(t, src, "push", "busybox", hub+"/library/alpine:3.19")
	useRegistriesConf(t, `[[registry]]
prefix = "docker.io"
location = "127.0.0.1:1"
[[registry.mirror]]
location = "`+hub+`"
`)
	return hub
}

// TestShortNamesFromDockerHub: a short name in from: or FROM is Docker
// Hub's, docker.io/library/NAME:TAG, pulled when the store lacks it
// (here through a mirror), and kiln images shows it by its familiar name.
func TestShortNamesFromDockerHub(t *testing.T) {
	dockerHubMirror(t, buildRoot(t))
	root := newRoot(t)
	yaml := writeContext(t, map[string]string{"kiln.yml": "from: alpine\nsteps:\n  - run: echo yaml > /which\nimage:\n  cmd: [cat, /which]\n"})
	mustKiln(t, root, "build", "--progress", "plain", "-t", "from-yaml", yaml)
	if r := mustKiln(t, root, "run", "from-yaml"); r.stdout != "yaml\n" {
		t.Errorf("the image built from alpine printed %q", r.stdout)
	}
	docker := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.19\nRUN echo dockerfile > /which\nCMD [\"cat\", \"/which\"]\n"})
	mustKiln(t, root, "build", "--progress", "plain", "-t", "from-dockerfile", docker)
	if r := mustKiln(t, root, "run", "from-dockerfile"); r.stdout != "dockerfile\n" {
		t.Errorf("the image built FROM alpine:3.19 printed %q", r.stdout)
	}
	images := mustKiln(t, root, "images", "-q").stdout
	for _, want := range []string{"alpine:latest\n", "alpine:3.19\n"} {
		if !strings.Contains(images, want) {
			t.Errorf("kiln images -q does not list %s:\n%s", want, images)
		}
	}
	for _, n := range []string{"alpine", "docker.io/library/alpine", "docker.io/library/alpine:latest", "library/alpine:latest"} {
		mustKiln(t, root, "inspect", n)
	}
}

// TestBuildPullShortName: with a newer alpine:3.19 in the registry, a
// build keeps the store's copy and --pull fetches the new one, for a
// short name as for a full one.
func TestBuildPullShortName(t *testing.T) {
	src := buildRoot(t)
	hub := dockerHubMirror(t, src)
	root := newRoot(t)
	mustKiln(t, root, "pull", hub+"/library/alpine:3.19", "-t", "alpine:3.19")
	newer := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo newer > /version\n"})
	mustKiln(t, src, "build", "--progress", "plain", "-t", hub+"/library/alpine:3.19", "--push", newer)
	probe := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.19\nRUN cat /version 2>/dev/null || echo old > /version\nCMD [\"cat\", \"/version\"]\n"})
	mustKiln(t, root, "build", "--progress", "plain", "-t", "probe", probe)
	if r := mustKiln(t, root, "run", "probe"); r.stdout != "old\n" {
		t.Errorf("without --pull the build used %q, want the store's alpine:3.19 (old)", r.stdout)
	}
	mustKiln(t, root, "build", "--progress", "plain", "--pull", "-t", "probe", probe)
	if r := mustKiln(t, root, "run", "probe"); r.stdout != "newer\n" {
		t.Errorf("with --pull the build used %q, want the registry's new alpine:3.19 (newer)", r.stdout)
	}
}

// TestShortNameOffline: a short name neither the store nor the registry
// has fails the build with the full name tried and how to get it (the
// test binary's registries.conf sends Docker Hub's names to a closed
// port).
func TestShortNameOffline(t *testing.T) {
	root := buildRoot(t)
	for _, tc := range []struct{ file, text, full, short string }{
		{"kiln.yml", "from: alpine\n", "docker.io/library/alpine:latest", "alpine"},
		{"Dockerfile", "FROM alpine:3.19\nRUN true\n", "docker.io/library/alpine:3.19", "alpine:3.19"},
	} {
		r := kiln(t, root, nil, "build", writeContext(t, map[string]string{tc.file: tc.text}))
		for _, want := range []string{"pulling " + tc.full + " failed", "kiln import DIR -t " + tc.short, "kiln pull " + tc.full} {
			if r.code != 2 || !strings.Contains(r.stderr, want) {
				t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", tc.text, r.code, r.stderr, want)
			}
		}
	}
}

// TestPushPullShortName: -t myapp --push, kiln push and kiln pull agree
// that myapp is docker.io/library/myapp:latest (here a registries.conf
// location, an in-process registry).
func TestPushPullShortName(t *testing.T) {
	root := buildRoot(t)
	hub := startHub(t)
	useRegistriesConf(t, "[[registry]]\nprefix = \"docker.io\"\nlocation = \""+hub+"\"\n")
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo app > /app\n"})
	built := strings.TrimSpace(mustKiln(t, root, "build", "--progress", "plain", "-t", "myapp", "--push", dir).stdout)
	desc, err := remote.Head(mustRef(t, hub+"/library/myapp:latest"))
	if err != nil {
		t.Fatalf("-t myapp --push did not reach docker.io/library/myapp:latest: %v", err)
	}
	if desc.Digest.String() != built {
		t.Errorf("the registry has %s, the build made %s", desc.Digest, built)
	}
	mustKiln(t, root, "push", "busybox", "docker.io/library/tools:1")
	mustKiln(t, root, "push", "busybox", "user/tools")
	for _, ref := range []string{"/library/tools:1", "/user/tools:latest"} {
		if _, err := remote.Head(mustRef(t, hub+ref)); err != nil {
			t.Errorf("kiln push did not reach %s: %v", ref, err)
		}
	}

	other := newRoot(t)
	if got := strings.TrimSpace(mustKiln(t, other, "pull", "myapp").stdout); got != built {
		t.Errorf("kiln pull myapp printed %s, want %s", got, built)
	}
	for _, n := range []string{"myapp", "myapp:latest", "docker.io/library/myapp:latest"} {
		mustKiln(t, other, "inspect", n)
	}
	if got := strings.TrimSpace(mustKiln(t, other, "pull", "docker.io/library/myapp:latest").stdout); got != built {
		t.Errorf("kiln pull docker.io/library/myapp:latest printed %s, want %s", got, built)
	}
	if r := mustKiln(t, other, "images", "-q"); r.stdout != "myapp:latest\n" {
		t.Errorf("after pulling myapp and docker.io/library/myapp:latest, kiln images -q = %q, want one name", r.stdout)
	}
}

// TestRemoteCacheNoCredentials: without credentials for the cache's
// registry, --cache-from warns and --cache-to fails, each on one line
// that names the registry and says to run kiln login HOST, not with a
// library's raw error.
func TestRemoteCacheNoCredentials(t *testing.T) {
	root := buildRoot(t)
	reg := startDockerRegistry(t)
	isolateDockerConfig(t)
	ca := "--ca-file=" + reg.caFile
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo hi > /hi\n"})
	cache := "registry://" + reg.host + "/cache/app:1"
	hint := reg.host + ": authentication failed (401 Unauthorized): log in with kiln login " + reg.host

	r := mustKiln(t, root, "build", "--progress", "plain", "--cache-from", cache, ca, dir)
	if !strings.Contains(r.stderr, "kiln: warning: "+cache+": ") || !strings.Contains(r.stderr, hint) {
		t.Errorf("--cache-from without credentials: stderr %q, want a warning with %q", r.stderr, hint)
	}
	for _, raw := range []string{"UNAUTHORIZED", "GET https://", "\"errors\""} {
		if strings.Contains(r.stderr, raw) {
			t.Errorf("--cache-from without credentials: stderr %q has the raw %q", r.stderr, raw)
		}
	}
	r = kiln(t, root, nil, "build", "--progress", "plain", "--cache-to", cache, ca, dir)
	if r.code == 0 || !strings.Contains(r.stderr, hint) || strings.Contains(r.stderr, "UNAUTHORIZED") {
		t.Errorf("--cache-to without credentials: exit %d, stderr %q, want %q", r.code, r.stderr, hint)
	}
}

// TestLoginRemembersCA: kiln login --ca-file keeps the CA for the
// registry, so the next push needs no flag.
func TestLoginRemembersCA(t *testing.T) {
	root := buildRoot(t)
	reg := startDockerRegistry(t)
	isolateDockerConfig(t)
	r := kiln(t, root, strings.NewReader(reg.password+"\n"), "login", reg.host, "-u", reg.user, "--password-stdin", "--ca-file", reg.caFile)
	if r.code != 0 {
		t.Fatalf("login: exit %d: %s", r.code, r.stderr)
	}
	kept := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "kiln", "certs.d", reg.host, "ca.crt")
	if !strings.Contains(r.stderr, kept) {
		t.Errorf("login does not say where it kept the CA (%s): %q", kept, r.stderr)
	}
	if r := kiln(t, root, nil, "push", "busybox", reg.host+"/test/busybox:1"); r.code != 0 {
		t.Errorf("push after login --ca-file, without the flag: exit %d: %s", r.code, r.stderr)
	}
}

// TestCertsDir: a registry's CA in certs.d/HOST/ca.crt, where a Docker
// user puts it, is trusted without --ca-file (here the user's
// ~/.config/kiln/certs.d; /etc/docker/certs.d and /etc/containers/certs.d
// are read the same way, which package registry's TestCertDirs checks).
func TestCertsDir(t *testing.T) {
	root := buildRoot(t)
	reg := startDockerRegistry(t)
	isolateDockerConfig(t)
	ca, err := os.ReadFile(reg.caFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "kiln", "certs.d", reg.host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := kiln(t, root, strings.NewReader(reg.password+"\n"), "login", reg.host, "-u", reg.user, "--password-stdin"); r.code != 0 {
		t.Fatalf("login without --ca-file, the CA in %s: exit %d: %s", dir, r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "push", "busybox", reg.host+"/test/busybox:1"); r.code != 0 {
		t.Errorf("push without --ca-file, the CA in %s: exit %d: %s", dir, r.code, r.stderr)
	}
}
