package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// usernsDockerfile makes files as root and as 1000, a whiteout and an
// opaque directory, with a cache mount and a secret, and prints the
// step's uid and uid map (to the log, not the layer).
const usernsDockerfile = `FROM busybox
RUN mkdir -p /od && echo x > /od/x && echo gone > /gone
RUN --mount=type=cache,target=/cache --mount=type=secret,id=tok,target=/run/tok \
    echo "uid=$(id -u) map=$(cat /proc/self/uid_map | tr -s ' ' | tr ' ' ,)" && \
    echo c >> /cache/n && test "$(cat /run/tok)" = s3cret && \
    echo r > /byroot && echo u > /by1000 && chown 1000:1000 /by1000 && \
    rm /gone && rm -r /od && mkdir /od && echo y > /od/y
`

// TestBuildUsernsAuto builds the same Dockerfile with and without
// --userns auto, with SOURCE_DATE_EPOCH: under it the step is uid 0 on a
// uid map that is not the identity, and the image is the same, digest
// and layer entries, owners included.
func TestBuildUsernsAuto(t *testing.T) {
	enginetest.RequireRoot(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := writeContext(t, map[string]string{"Dockerfile": usernsDockerfile})
	secret := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	type built struct {
		digest, log string
		owners      map[string]string
	}
	build := func(t *testing.T, flags ...string) built {
		root := newRoot(t)
		importBusybox(t, root)
		out := filepath.Join(t.TempDir(), "oci")
		args := append([]string{"build", "--progress", "plain", "--secret", "id=tok,src=" + secret, "--output", "type=oci,dest=" + out}, flags...)
		r := mustKiln(t, root, append(args, "-f", filepath.Join(dir, "Dockerfile"), dir)...)
		return built{digest: digestOf(t, r), log: r.stdout + r.stderr, owners: topLayerOwners(t, out)}
	}
	plain := build(t)
	auto := build(t, "--userns", "auto")
	// The copy snapshotter writes the same changes as another layer (a
	// removed directory made again is not opaque there): compare it with
	// itself.
	plainCopy := build(t, "--snapshotter", "copy")
	autoCopy := build(t, "--userns", "auto", "--snapshotter", "copy")
	if autoCopy.digest != plainCopy.digest {
		t.Errorf("digest %s under --userns auto with the copy snapshotter, %s without", autoCopy.digest, plainCopy.digest)
	}
	if !strings.Contains(plain.log, "uid=0 map=,0,0,4294967295") {
		t.Errorf("without --userns the step should be root on the identity map:\n%s", plain.log)
	}
	i := strings.Index(auto.log, "uid=0 map=,0,")
	if i < 0 || strings.Contains(auto.log, "uid=0 map=,0,0,") {
		t.Errorf("under --userns auto the step should be uid 0 on a map to another range:\n%s", auto.log)
	}
	if auto.digest != plain.digest {
		t.Errorf("digest %s under --userns auto, %s without", auto.digest, plain.digest)
	}
	want := map[string]string{"byroot": "0:0", "by1000": "1000:1000", ".wh.gone": "0:0", "od/": "0:0", "od/.wh..wh..opq": "0:0", "od/y": "0:0"}
	for name, owner := range want {
		if auto.owners[name] != owner {
			t.Errorf("%s is %q in the --userns auto layer, want %q (all: %v)", name, auto.owners[name], owner, auto.owners)
		}
	}
	if len(auto.owners) != len(plain.owners) {
		t.Errorf("layer entries %v under --userns auto, %v without", auto.owners, plain.owners)
	}
}

// TestBuildUsernsConfig: the root's config.yml sets the default, and a
// key it does not know is an error naming the file and line.
func TestBuildUsernsConfig(t *testing.T) {
	enginetest.RequireRoot(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo \"map=$(cat /proc/self/uid_map | tr -s ' ' | tr ' ' ,)\"\n"})
	root := newRoot(t)
	importBusybox(t, root)
	if err := os.WriteFile(filepath.Join(root, "config.yml"), []byte("userns: auto\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustKiln(t, root, "build", "--progress", "plain", "--no-cache", "-f", filepath.Join(dir, "Dockerfile"), dir)
	if !strings.Contains(r.stdout+r.stderr, "map=,0,") || strings.Contains(r.stdout+r.stderr, "map=,0,0,") {
		t.Errorf("with userns: auto in config.yml the step should be on a map to another range:\n%s", r.stderr)
	}
	r = mustKiln(t, root, "build", "--progress", "plain", "--no-cache", "--userns", "host", "-f", filepath.Join(dir, "Dockerfile"), dir)
	if !strings.Contains(r.stdout+r.stderr, "map=,0,0,4294967295") {
		t.Errorf("--userns host should win over config.yml:\n%s", r.stderr)
	}
	if err := os.WriteFile(filepath.Join(root, "config.yml"), []byte("userns: auto\nusernz: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = kiln(t, root, nil, "build", "-f", filepath.Join(dir, "Dockerfile"), dir)
	if r.code != exitBadInput || !strings.Contains(r.stderr, "config.yml:2") || !strings.Contains(r.stderr, "usernz") {
		t.Errorf("an unknown key: exit %d, want %d naming config.yml:2 and the key:\n%s", r.code, exitBadInput, r.stderr)
	}
}

// topLayerOwners returns "uid:gid" by entry name of the last layer of
// the one image in the OCI layout dir.
func topLayerOwners(t *testing.T, dir string) map[string]string {
	t.Helper()
	img := layoutImage(t, dir)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	owners := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return owners
		}
		if err != nil {
			t.Fatal(err)
		}
		owners[strings.TrimPrefix(h.Name, "./")] = fmt.Sprintf("%d:%d", h.Uid, h.Gid)
	}
}

// TestBuildUsernsDebugShell: the debugger's commands run in the step's
// user namespace, and see its files.
func TestBuildUsernsDebugShell(t *testing.T) {
	enginetest.RequireRoot(t)
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"app.yml": debugManifest})
	script := "b 4\nc\ncat /greeting\nshell echo map=$(cat /proc/self/uid_map | tr -s ' ' | tr ' ' ,)\nq\n"
	r := kiln(t, root, strings.NewReader(script), "build", "--debug", "--userns", "auto", "-f", filepath.Join(dir, "app.yml"), dir)
	if !strings.Contains(r.stderr, "(kiln) hello\n") {
		t.Errorf("the debugger's cat did not print the step's file:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "map=,0,") || strings.Contains(r.stderr, "map=,0,0,") {
		t.Errorf("the debugger's shell should be on a map to another range:\n%s", r.stderr)
	}
}

// TestBuildUsernsServices: tests and their services (containers that
// share a pod's network namespace) run under --userns auto.
func TestBuildUsernsServices(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	dir := writeContext(t, map[string]string{"kiln.yml": servicesManifest})
	r := kiln(t, root, nil, "build", "--userns", "auto", "--progress", "plain", dir)
	if r.code != 0 || strings.Count(r.stdout+r.stderr, "passed: test:") != 2 {
		t.Errorf("exit %d, want both tests passed:\n%s%s", r.code, r.stdout, r.stderr)
	}
}
