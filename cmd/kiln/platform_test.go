package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/image/platform"
)

// multiRoot imports the host's busybox and the foreign one under the one
// name busybox (an index of both) into a new root.
func multiRoot(t *testing.T) (root string, foreign platform.Platform) {
	t.Helper()
	enginetest.RequireRoot(t)
	arch := enginetest.ForeignArch()
	enginetest.RequireEmulation(t, arch)
	foreign, _ = platform.Parse("linux/" + arch)
	other := enginetest.BusyboxFor(t, arch)
	root = newRoot(t)
	importBusybox(t, root)
	mustKiln(t, root, "import", other, "-t", "busybox", "--cmd", "/bin/sh", "--platform", foreign.String())
	return root, foreign
}

// indexPlatforms reads an image index with skopeo inspect --raw (the
// reference tool) and returns its images' platforms and digests.
func indexPlatforms(t *testing.T, ref string, flags ...string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skipping: skopeo is not installed (apt-get install skopeo)")
	}
	out, err := exec.Command("skopeo", append(append([]string{"inspect", "--raw"}, flags...), ref)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v", ref, err)
	}
	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(out, &idx); err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v\n%s", ref, err, out)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("%s is a %q, want an OCI image index:\n%s", ref, idx.MediaType, out)
	}
	got := map[string]string{}
	for _, m := range idx.Manifests {
		got[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest
	}
	return got
}

// TestBuildPlatforms builds examples/hello for the host's platform and a
// foreign one: the OCI layout output holds an index of both (skopeo),
// kiln run --platform runs the foreign image under emulation (uname -m),
// its busybox is the foreign architecture's (umoci unpack, file), and a
// push to a registry then a pull --platform into an empty root gives the
// same image digest.
func TestBuildPlatforms(t *testing.T) {
	root, foreign := multiRoot(t)
	host := platform.Host()
	oci := filepath.Join(t.TempDir(), "oci")
	plats := host.String() + "," + foreign.String()
	mustKiln(t, root, "build", "--platform", plats, "-f", "../../examples/hello/app.yml", "-t", "hello", "--output", "type=oci,dest="+oci)
	got := indexPlatforms(t, "oci:"+oci+":latest")
	if len(got) != 2 || got[host.String()] == "" || got[foreign.String()] == "" {
		t.Fatalf("the index has %v, want %s and %s", got, host, foreign)
	}

	r := mustKiln(t, root, "run", "--platform", foreign.String(), "hello", "--", "uname", "-m")
	want := map[string]string{"arm64": "aarch64", "amd64": "x86_64"}[foreign.Arch]
	if strings.TrimSpace(r.stdout) != want {
		t.Errorf("kiln run --platform %s hello -- uname -m printed %q, want %q", foreign, r.stdout, want)
	}
	r = mustKiln(t, root, "run", "hello", "--", "cat", "/greeting")
	if !strings.Contains(r.stdout, "hello from a kiln build") {
		t.Errorf("kiln run hello printed %q", r.stdout)
	}

	// umoci unpacks the foreign image (skopeo picks it out of the index).
	for _, tool := range []string{"umoci", "file"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed (apt-get install %s)", tool, tool)
		}
	}
	one := filepath.Join(t.TempDir(), "one")
	if out, err := exec.Command("skopeo", "copy", "--override-arch", foreign.Arch, "oci:"+oci+":latest", "oci:"+one+":latest").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", one+":latest", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	out, err := exec.Command("file", "-b", filepath.Join(bundle, "rootfs", "bin", "busybox")).Output()
	if err != nil {
		t.Fatal(err)
	}
	wantFile := map[string]string{"arm64": "ARM aarch64", "amd64": "x86-64"}[foreign.Arch]
	if !strings.Contains(string(out), wantFile) {
		t.Errorf("file says %q of the %s image's busybox, want %q", out, foreign, wantFile)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", "app", "hello.sh")); err != nil {
		t.Errorf("the %s image lacks the copied /app/hello.sh: %v", foreign, err)
	}

	// Push the index, pull the foreign image into an empty root.
	reg := startDockerRegistry(t)
	ca := "--ca-file=" + reg.caFile
	if r := kiln(t, root, strings.NewReader(reg.password+"\n"), "login", reg.host, "-u", reg.user, "--password-stdin", ca); r.code != 0 {
		t.Fatalf("kiln login: %s", r.stderr)
	}
	ref := reg.host + "/hello:multi"
	mustKiln(t, root, "build", "--platform", plats, "-f", "../../examples/hello/app.yml", "-t", ref, "--push", ca)
	pushed := indexPlatforms(t, "docker://"+ref, "--cert-dir", reg.certDir, "--creds", reg.user+":"+reg.password)
	if pushed[foreign.String()] != got[foreign.String()] || pushed[host.String()] != got[host.String()] {
		t.Errorf("the registry's index has %v, want the layout's %v", pushed, got)
	}
	empty := newRoot(t)
	if r := kiln(t, empty, strings.NewReader(reg.password+"\n"), "login", reg.host, "-u", reg.user, "--password-stdin", ca); r.code != 0 {
		t.Fatalf("kiln login: %s", r.stderr)
	}
	d := strings.TrimSpace(mustKiln(t, empty, "pull", "--platform", foreign.String(), ref, ca).stdout)
	if d != got[foreign.String()] {
		t.Errorf("pull --platform %s printed %s, want the index's %s", foreign, d, got[foreign.String()])
	}
}

// TestBuildPlatformsCross builds a Dockerfile whose build stage runs on
// $BUILDPLATFORM and is copied into each target's stage: the JSON events
// show no step running for the foreign platform (nothing emulated), and
// the index holds both platforms.
func TestBuildPlatformsCross(t *testing.T) {
	root, foreign := multiRoot(t)
	host := platform.Host()
	cross := `FROM --platform=$BUILDPLATFORM busybox AS build
ARG TARGETARCH
RUN echo "built on $(uname -m) for $TARGETARCH" > /out
FROM busybox
COPY --from=build /out /out
`
	oci := filepath.Join(t.TempDir(), "oci")
	build := func(dockerfile string, args ...string) (ran []string, emulated []string) {
		t.Helper()
		dir := writeContext(t, map[string]string{"Dockerfile": dockerfile})
		args = append([]string{"build", "--platform", host.String() + "," + foreign.String(), "--progress", "json", "-f", filepath.Join(dir, "Dockerfile")}, args...)
		r := mustKiln(t, root, append(args, dir)...)
		for _, line := range strings.Split(r.stdout, "\n") {
			var e struct{ Type, Node, Name, State, Output string }
			if json.Unmarshal([]byte(line), &e) != nil {
				continue
			}
			if e.Type == "state" && e.State == "running" && strings.Contains(e.Name, "] RUN ") {
				ran = append(ran, e.Name)
			}
			if strings.Contains(e.Output, "kiln: emulating") {
				emulated = append(emulated, e.Node)
			}
		}
		return ran, emulated
	}
	ran, emulated := build(cross, "--output", "type=oci,dest="+oci, "-t", "cross")
	if len(emulated) > 0 {
		t.Errorf("nodes %q ran under emulation, want none", emulated)
	}
	// The build stage differs per target (TARGETARCH), so its RUN runs
	// once for each, both times on the build platform.
	if len(ran) != 2 || slices.ContainsFunc(ran, func(n string) bool { return !strings.HasPrefix(n, "["+host.String()+"] ") }) {
		t.Errorf("the RUN steps that ran: %q; want the build stage's, once per target, each for %s", ran, host)
	}
	// The same Dockerfile without --platform=$BUILDPLATFORM emulates:
	// the check above can fail.
	if _, emulated := build(strings.Replace(cross, "--platform=$BUILDPLATFORM ", "", 1)); len(emulated) != 1 {
		t.Errorf("without FROM --platform=$BUILDPLATFORM, %d nodes were emulated, want the foreign RUN", len(emulated))
	}
	got := indexPlatforms(t, "oci:"+oci+":latest")
	if len(got) != 2 || got[host.String()] == "" || got[foreign.String()] == "" {
		t.Fatalf("the index has %v, want %s and %s", got, host, foreign)
	}
	r := mustKiln(t, root, "run", "--platform", foreign.String(), "cross", "--", "cat", "/out")
	if want := "built on " + map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[host.Arch] + " for " + foreign.Arch; strings.TrimSpace(r.stdout) != want {
		t.Errorf("the %s image's /out says %q, want %q", foreign, r.stdout, want)
	}
}

// TestBuildPlatformsRemoteCache: root A builds for two platforms and
// writes its cache to a registry; root B, with the same bases, builds the
// same manifest for the same platforms from that cache: no step runs
// (none emulated), only the tests, and the index is A's. The records of
// both platforms are in the artifact (each key holds its platform).
func TestBuildPlatformsRemoteCache(t *testing.T) {
	a, foreign := multiRoot(t)
	b, _ := multiRoot(t)
	reg, ca := loggedInRegistry(t, a)
	if r := kiln(t, b, strings.NewReader(reg.password+"\n"), "login", reg.host, "-u", reg.user, "--password-stdin", ca); r.code != 0 {
		t.Fatalf("kiln login: %s", r.stderr)
	}
	plats := platform.Host().String() + "," + foreign.String()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"kiln.yml": `from: busybox
steps:
  - run: uname -m > /arch
  - copy: {src: ./app.txt, dst: /app.txt}
tests:
  - name: arch
    run: test -s /arch
`, "app.txt": "v1\n"})
	cacheRef := "registry://" + reg.host + "/cache/multi:main"
	built := mustKiln(t, a, "build", dir, "--platform", plats, "--cache-to", cacheRef+",mode=max", ca)
	if !strings.Contains(built.stderr, "exported 4 cache records") {
		t.Errorf("the build did not say that it exported 4 records (2 steps × 2 platforms):\n%s", built.stderr)
	}
	r := mustKiln(t, b, "build", dir, "--platform", plats, "--cache-from", cacheRef, "--progress", "json", ca)
	var digest string
	names := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		var e struct{ Type, Node, Name, State, Output, Digest string }
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if e.Name != "" {
			names[e.Node] = e.Name
		}
		if e.Type == "state" && e.State == "running" && !strings.Contains(e.Name, "] test: arch") {
			t.Errorf("%s ran on root B, want it from the remote cache", e.Name)
		}
		if strings.Contains(e.Output, "kiln: emulating") && !strings.Contains(names[e.Node], "] test: arch") {
			t.Errorf("root B emulated %s, a step", names[e.Node])
		}
		if e.Type == "result" {
			digest = e.Digest
		}
	}
	if want := strings.TrimSpace(built.stdout); digest != want {
		t.Errorf("root B built %q from the remote cache, want A's index %q\n%s", digest, want, r.stdout)
	}
	if out := mustKiln(t, b, "run", "--platform", foreign.String(), digest, "--", "cat", "/arch"); strings.TrimSpace(out.stdout) != map[string]string{"arm64": "aarch64", "amd64": "x86_64"}[foreign.Arch] {
		t.Errorf("the %s image's /arch holds %q", foreign, out.stdout)
	}
}
