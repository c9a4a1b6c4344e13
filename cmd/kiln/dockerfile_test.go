package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// kilnLong is kiln with a longer time limit, for builds that write
// hundreds of megabytes.
func kilnLong(t *testing.T, root string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"--root", root}, args...), strings.NewReader(""), &stdout, &stderr)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	if r.code != 0 {
		t.Fatalf("kiln %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

const (
	secretValue = "s3cr3t-VALUE-that-must-not-leak"
	secretMD5   = "f6b9fea865a61267378066c64222854e" // md5sum of secretValue
)

const e2eDockerfile = `# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS build
ARG GREETING=hi
ENV APP=/opt/app
WORKDIR $APP/src
RUN echo "$GREETING from $APP" > out.txt
RUN --mount=type=cache,target=/cache,id=downloads sh -c 'if [ -f /cache/dl ]; then echo reused > /state; else echo downloaded > /cache/dl; echo fresh > /state; fi'
RUN --mount=type=secret,id=tok,required sh -c 'test "$(md5sum < /run/secrets/tok | cut -c1-32)" = "` + secretMD5 + `" && echo ok > /secret-ok'
RUN <<EOF
echo "heredoc $GREETING" >> /opt/app/src/out.txt
EOF

FROM build AS unused
RUN exit 1

FROM ${BASE}
COPY --from=build /opt/app/src/out.txt /state /secret-ok /result/
# --chmod also sets the mode of the directories the copy makes, as in
# BuildKit: /home/app is made first, so that it stays 0755.
WORKDIR /home/app
COPY --chown=nobody:nogroup --chmod=0640 hello.txt /home/app/
USER nobody
WORKDIR /home/app/work
LABEL org.example.name=e2e
EXPOSE 8080/tcp
CMD ["cat", "/result/out.txt"]
`

// TestBuildDockerfile builds a multi-stage Dockerfile end to end: COPY
// --from, ARG and ENV expansion, WORKDIR, USER, LABEL, EXPOSE, CMD, a
// heredoc, a cache mount kept across two builds, and a secret readable in
// its RUN that reaches no layer, the config or the history.
func TestBuildDockerfile(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"Dockerfile": e2eDockerfile, "hello.txt": "hello\n"})
	secret := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte(secretValue), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "oci")
	r := mustKiln(t, root, "build", "-f", filepath.Join(dir, "Dockerfile"), "--build-arg", "GREETING=hey",
		"--secret", "id=tok,src="+secret, "--output", "type=oci,dest="+out, "-t", "e2e", dir)
	if !strings.Contains(r.stderr, "# syntax=docker/dockerfile:1 directive is ignored") {
		t.Errorf("no note about # syntax on stderr:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "RUN exit 1") {
		t.Errorf("the unused stage was built:\n%s", r.stderr)
	}

	got := mustKiln(t, root, "run", "e2e").stdout
	if want := "hey from /opt/app\nheredoc hey\n"; got != want {
		t.Errorf("CMD printed %q, want %q", got, want)
	}
	got = mustKiln(t, root, "run", "e2e", "--", "sh", "-c", "id -un; pwd; cat /result/state /result/secret-ok; stat -c '%U:%G %a' /home/app/hello.txt /home/app/work").stdout
	if want := "nobody\n/home/app/work\nfresh\nok\nnobody:nogroup 640\nnobody:nogroup 755\n"; got != want {
		t.Errorf("the image holds %q, want %q", got, want)
	}

	// The secret is in no layer, nor in the config and history; its
	// mountpoint left no stub.
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secretValue)) {
		t.Errorf("the secret is in the image config")
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "nobody" || c.WorkingDir != "/home/app/work" || c.Labels["org.example.name"] != "e2e" {
		t.Errorf("config user %q workdir %q labels %v", c.User, c.WorkingDir, c.Labels)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || strings.Join(c.Cmd, " ") != "cat /result/out.txt" {
		t.Errorf("config exposed %v cmd %q", c.ExposedPorts, c.Cmd)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	// The build stage's layers too: all of them are in the store.
	var all []io.ReadCloser
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rc)
	}
	for i, rc := range all {
		checkLayer(t, i, rc)
	}
	// Nowhere in the root either: blobs (gunzipped), unpacked layers of
	// every stage, cache records, tags, leftovers in tmp.
	sawBuildLayer := false
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return err
			}
			if data, err = io.ReadAll(zr); err != nil {
				return err
			}
		}
		sawBuildLayer = sawBuildLayer || bytes.Contains(data, []byte("heredoc hey"))
		if bytes.Contains(data, []byte(secretValue)) {
			t.Errorf("the secret is in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawBuildLayer {
		t.Errorf("the scan for the secret never saw the build stage's files: it looked in the wrong place")
	}
	stubs, _ := filepath.Glob(filepath.Join(root, "layers", "*", "run"))
	if len(stubs) > 0 {
		t.Errorf("layers hold the secret's mountpoint: %v", stubs)
	}
	if h := mustKiln(t, root, "inspect", "e2e").stdout; strings.Contains(h, secretValue) {
		t.Errorf("the secret is in kiln inspect's output")
	}

	// The cache mount keeps its file: a rebuild that runs every step
	// finds it.
	mustKiln(t, root, "build", "-f", filepath.Join(dir, "Dockerfile"), "--build-arg", "GREETING=hey", "--no-cache",
		"--secret", "id=tok,src="+secret, "-t", "e2e2", dir)
	if got := mustKiln(t, root, "run", "e2e2", "--", "cat", "/result/state").stdout; got != "reused\n" {
		t.Errorf("after a rebuild /state = %q, want reused", got)
	}

	// Without the required secret the build fails, naming it.
	r = kiln(t, root, nil, "build", "-f", filepath.Join(dir, "Dockerfile"), "--no-cache", dir)
	if r.code == 0 || !strings.Contains(r.stderr, `secret "tok" is required`) {
		t.Errorf("a build without the secret: exit %d\n%s", r.code, r.stderr)
	}
}

// checkLayer fails if the layer tar holds the secret, or a stub of a
// mount target.
func checkLayer(t *testing.T, i int, rc io.ReadCloser) {
	t.Helper()
	tarEntries(t, rc, func(name string, data []byte) {
		if strings.HasPrefix(name, "run/secrets") || strings.HasPrefix(name, "cache") || name == "run" || name == "run/" {
			t.Errorf("layer %d holds the mount stub %s", i, name)
		}
		if bytes.Contains(data, []byte(secretValue)) {
			t.Errorf("layer %d: %s holds the secret", i, name)
		}
	})
}

// tarEntries calls fn with the name (without "./") and the content of
// each entry of the tar rc, then closes rc.
func tarEntries(t *testing.T, rc io.ReadCloser, fn func(name string, data []byte)) {
	t.Helper()
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("reading a layer: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fn(strings.TrimPrefix(h.Name, "./"), data)
	}
}

// TestBuildBenchDockerfiles builds the peer benchmark's Dockerfiles
// (scripts/bench/cases, beside their kiln.yml equivalents) as written, with
// --build-arg BASE=busybox:latest.
func TestBuildBenchDockerfiles(t *testing.T) {
	cases := filepath.Join(enginetest.RepoRoot(t), "scripts", "bench", "cases")
	root := buildRoot(t)
	for _, name := range []string{"chain10", "multistage", "big200m", "copy5k"} {
		t.Run(name, func(t *testing.T) {
			ctxDir := filepath.Join(cases, name)
			if name == "copy5k" {
				ctxDir = t.TempDir()
				if out, err := exec.Command("sh", filepath.Join(cases, name, "gen.sh"), ctxDir).CombinedOutput(); err != nil {
					t.Fatalf("gen.sh: %v\n%s", err, out)
				}
			}
			start := time.Now()
			kilnLong(t, root, "build", "--network", "none", "-f", filepath.Join(cases, name, "Dockerfile"),
				"--build-arg", "BASE=busybox:latest", "-t", "bench-"+name, ctxDir)
			cold := time.Since(start)
			start = time.Now()
			kilnLong(t, root, "build", "--network", "none", "-f", filepath.Join(cases, name, "Dockerfile"),
				"--build-arg", "BASE=busybox:latest", "-t", "bench-"+name, ctxDir)
			t.Logf("%s: cold %s, warm %s", name, cold.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			var check []string
			switch name {
			case "chain10":
				check = []string{"cat", "/step10"}
			case "multistage":
				check = []string{"sh", "-c", "wc -l < /out/all.txt"}
			case "big200m":
				check = []string{"sh", "-c", "wc -c < /big.bin"}
			case "copy5k":
				check = []string{"sh", "-c", "find /ctx/files -type f | wc -l"}
			}
			got := strings.TrimSpace(mustKiln(t, root, "run", "bench-"+name, "--", check[0]).stdout)
			if len(check) > 1 {
				got = strings.TrimSpace(mustKiln(t, root, append([]string{"run", "bench-" + name, "--"}, check...)...).stdout)
			}
			want := map[string]string{"chain10": "step10", "multistage": "6", "big200m": "209715200", "copy5k": "5000"}[name]
			if got != want {
				t.Errorf("%s: got %q, want %q", name, got, want)
			}
		})
	}
}
