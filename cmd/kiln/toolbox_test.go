package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/toolbox"
)

// staticKiln builds kiln as it is released (see releaseKiln) into a
// temporary directory: the test binary is not static, and the helpers
// must run in scratch and busybox containers.
func staticKiln(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kiln")
	releaseKiln(t, bin, staticCC())
	return bin
}

// toolboxManifest uses a toolbox directory and kiln render in a busybox
// stage, and kiln checksum in a scratch stage.
const toolboxManifest = `---
vars:
  name: kiln
  n: 3
---
stages:
  main:
    from: busybox
    toolbox: [./tools, "image:twolayers"]
    steps:
      - run: echo plain > /plain
      - run: /.kiln/toolbox/tools/hello.sh > /hello && cat /.kiln/toolbox/twolayers/marker > /marker && test -x /.kiln/toolbox/twolayers/bin/busybox
      - run: /.kiln/bin/kiln render /.kiln/toolbox/tools/app.conf.j2 /etc/app.conf
      - run: echo junk > /.kiln/junk && ! touch /.kiln/toolbox/tools/x && mkdir -p /data && echo ok > /data/ok
      - copy: {from: bare, src: /, dst: /bare}
    tests:
      - name: wait
        run: /.kiln/bin/kiln wait-for 127.0.0.1:{{ port }} --timeout 10s
  bare:
    from: scratch
    toolbox: [./tools]
    steps:
      - run: ["/.kiln/bin/kiln", "checksum", "/.kiln/toolbox/tools/hello.sh", "{{ sum }}"]
target: main
`

// TestBuildToolbox: the toolbox and kiln's helpers are at /.kiln in
// busybox and scratch steps and in tests, nothing under /.kiln reaches
// any layer, the rendered file has the build's values, and toolbox
// content is outside the cache keys while the values are in those of the
// steps that can read them.
func TestBuildToolbox(t *testing.T) {
	root := buildRoot(t)
	bin := staticKiln(t)
	hello := "#!/bin/sh\necho tool says hi\n"
	sum := sha256.Sum256([]byte(hello))
	dir := writeContext(t, map[string]string{
		"app.yml":            toolboxManifest,
		"tools/hello.sh":     hello,
		"tools/app.conf.j2":  "name={{ name }} n={{ n }}\n",
		"tools/unused/x.txt": "x",
	})
	if err := os.Chmod(filepath.Join(dir, "tools/hello.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// An image of two layers, as a toolbox: an overlay of both.
	two := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo from an image > /marker\n"})
	mustKiln(t, root, "build", "-t", "twolayers", two)
	out := filepath.Join(t.TempDir(), "oci")
	build := func(extra ...string) result {
		args := append([]string{"build", "--progress", "plain", "--kiln-binary", bin,
			"--set", fmt.Sprintf("port=%d", port), "--set", "sum=" + hex.EncodeToString(sum[:]),
			"-f", filepath.Join(dir, "app.yml")}, extra...)
		return mustKiln(t, root, append(args, dir)...)
	}
	r := build("--output", "type=oci,dest="+out)
	t.Logf("stderr:\n%s", r.stderr)

	img := layoutImage(t, out)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tarEntries(t, rc, func(name string, data []byte) {
			if strings.HasPrefix(name, ".kiln") || strings.Contains(name, "/.kiln") {
				t.Errorf("layer %d holds %s", i, name)
			}
			files[name] = string(data)
		})
	}
	got := map[string]string{"hello": files["hello"], "marker": files["marker"], "etc/app.conf": files["etc/app.conf"], "data/ok": files["data/ok"]}
	want := map[string]string{"hello": "tool says hi\n", "marker": "from an image\n", "etc/app.conf": "name=kiln n=3\n", "data/ok": "ok\n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the image's files (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stderr, "[bare/0] done") || !strings.Contains(r.stderr, "[main/test/wait] passed") {
		t.Errorf("the scratch step's checksum or the wait-for test did not pass")
	}

	// A changed tool keeps every step cached; a changed value runs the
	// run steps again.
	if err := os.WriteFile(filepath.Join(dir, "tools/unused/x.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = build()
	if strings.Contains(r.stderr, "running") {
		t.Errorf("a changed toolbox file ran steps again:\n%s", r.stderr)
	}
	// A changed value runs again the steps that mention kiln (the
	// render step), not the others.
	r = build("--set", "name=other")
	if !strings.Contains(r.stderr, "[main/2] running") || !strings.Contains(r.stderr, "[main/0] cached") {
		t.Errorf("a changed value did not run the render step again, or ran the plain step:\n%s", r.stderr)
	}
}

// TestBuildHelperFailures: kiln wait-for fails a step when nothing
// listens, and kiln render fails, saying why, in a step whose command
// does not name kiln (it does not get the values, which are not in its
// key).
func TestBuildHelperFailures(t *testing.T) {
	root := buildRoot(t)
	bin := staticKiln(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, tc := range []struct {
		name, step, want string
	}{
		{"wait-for times out", "/.kiln/bin/kiln wait-for " + addr + " --timeout 300ms", "wait-for " + addr + ": no connection within 300ms"},
		{"render from a script", "sh /render.sh", "the values are only given to the steps whose command mentions kiln"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{
				"app.yml":   "from: busybox\nsteps:\n  - copy: {src: render.sh, dst: /render.sh}\n  - run: " + tc.step + "\n",
				"render.sh": "echo '{{ x }}' > /t.j2 && /.kiln/bin/kiln render /t.j2 /out\n",
			})
			start := time.Now()
			r := kiln(t, root, nil, "build", "--progress", "plain", "--kiln-binary", bin, "-f", filepath.Join(dir, "app.yml"), dir)
			if r.code == 0 {
				t.Fatal("the step passed")
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("kiln did not say %q:\n%s", tc.want, r.stderr)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the build took %s", d)
			}
		})
	}
}

// TestHelpers runs the helpers in this process.
func TestHelpers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := filepath.Join(dir, "t.j2")
	if err := os.WriteFile(tmpl, []byte("{{ a }}-{{ b.c }}{% for x in l %},{{ x }}{% endfor %}"), 0o644); err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(dir, "values.json")
	if err := os.WriteFile(values, []byte(`{"a": 3, "b": {"c": "s"}, "l": ["x", "y"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	for _, tc := range []struct {
		name, want string
		fn         func() (string, error)
	}{
		{"checksum", "", func() (string, error) { return "", checksum(file, abc) }},
		{"checksum with prefix", "", func() (string, error) { return "", checksum(file, "sha256:"+strings.ToUpper(abc)) }},
		{"checksum mismatch", "error: checksum of " + file + ": sha256 is " + abc + ", want " + strings.Repeat("0", 64), func() (string, error) {
			return "", checksum(file, strings.Repeat("0", 64))
		}},
		{"render", "3-s,x,y", func() (string, error) {
			v, err := toolbox.ReadValues(values)
			if err != nil {
				return "", err
			}
			var b strings.Builder
			err = renderTemplate(v, tmpl, "-", &b)
			return b.String(), err
		}},
		{"wait-for a bad address", "error: wait-for \"nope\": want HOST:PORT: address nope: missing port in address", func() (string, error) {
			return "", waitFor(t.Context(), "nope", time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.fn()
			if err != nil {
				got = "error: " + err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
