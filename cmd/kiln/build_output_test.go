package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestBuildOutputs writes a built image with --output: an OCI layout
// that skopeo inspects and umoci unpacks into a bundle runc runs (printing
// what the image's cmd prints), the same layout as a tar, and a docker
// load archive that go-containerregistry reads back and validates.
func TestBuildOutputs(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"greet.sh": "#!/bin/sh\necho \"hello from $WHO\"\n",
		"kiln.yml": `from: busybox
env:
  WHO: the built image
steps:
  - copy: {src: greet.sh, dst: /usr/bin/greet, mode: "0755"}
image:
  cmd: ["greet"]
`,
	})
	out := t.TempDir()
	layout := filepath.Join(out, "layout")
	ociTar := filepath.Join(out, "image-oci.tar")
	dockerTar := filepath.Join(out, "image-docker.tar")
	r := mustKiln(t, root, "build",
		"--output", "type=oci,dest="+layout,
		"--output", "type=oci,dest="+ociTar,
		"--output", "type=docker,dest="+dockerTar,
		dir)
	digest := digestOf(t, r)

	t.Run("skopeo inspect", func(t *testing.T) {
		skopeo := requireTool(t, "skopeo")
		b, err := exec.CommandContext(t.Context(), skopeo, "inspect", "oci:"+layout+":latest").Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, stderrOf(err))
		}
		var info struct {
			Digest string
			Env    []string
			Layers []string
		}
		if err := json.Unmarshal(b, &info); err != nil {
			t.Fatalf("skopeo inspect printed %s: %v", b, err)
		}
		if info.Digest != digest {
			t.Errorf("skopeo inspect: digest %s, kiln printed %s", info.Digest, digest)
		}
		if len(info.Layers) != 2 {
			t.Errorf("skopeo inspect: %d layers, want 2 (busybox and the copy)", len(info.Layers))
		}
	})

	t.Run("umoci unpack and runc run", func(t *testing.T) {
		umoci := requireTool(t, "umoci")
		runc := requireTool(t, "runc")
		bundle := filepath.Join(t.TempDir(), "bundle")
		if b, err := exec.CommandContext(t.Context(), umoci, "unpack", "--image", layout+":latest", bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack: %v\n%s", err, b)
		}
		cfgPath := filepath.Join(bundle, "config.json")
		b, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["process"].(map[string]any)["terminal"] = false
		if b, err = json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		runcRoot := t.TempDir()
		id := "kiln-test-" + filepath.Base(filepath.Dir(bundle))
		cmd := exec.CommandContext(t.Context(), runc, "--root", runcRoot, "run", "-b", bundle, id)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		exec.Command(runc, "--root", runcRoot, "delete", "-f", id).Run() //nolint:errcheck // best effort
		if err != nil {
			t.Fatalf("runc run: %v\n%s", err, stderr.String())
		}
		if string(got) != "hello from the built image\n" {
			t.Errorf("runc run printed %q, want %q", got, "hello from the built image\n")
		}
	})

	t.Run("oci tar", func(t *testing.T) {
		names := tarNames(t, ociTar)
		for _, want := range []string{"index.json", "oci-layout"} {
			if !names[want] {
				t.Errorf("%s lacks %s; it holds %v", ociTar, want, names)
			}
		}
		if !names["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")] {
			t.Errorf("%s lacks the manifest blob %s", ociTar, digest)
		}
	})

	t.Run("docker archive", func(t *testing.T) {
		img, err := tarball.ImageFromPath(dockerTar, nil)
		if err != nil {
			t.Fatalf("reading %s: %v", dockerTar, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("validate.Image: %v", err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"greet"}, cf.Config.Cmd); diff != "" {
			t.Errorf("cmd (-want +got):\n%s", diff)
		}
		if !tarNames(t, dockerTar)["manifest.json"] {
			t.Errorf("%s has no manifest.json", dockerTar)
		}
	})
}

// tarNames lists the entries of a tar file, without leading "./".
func tarNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		names[strings.TrimPrefix(h.Name, "./")] = true
	}
}

// TestBuildImageConfig checks the image: section of a manifest in the
// built image's config: each field, ports without a protocol taking /tcp,
// and a new entrypoint without a cmd dropping the base's cmd, as Docker
// does.
func TestBuildImageConfig(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": `from: busybox
steps:
  - run: mkdir -p /srv
image:
  entrypoint: ["/bin/echo", "hi"]
  env: {MODE: prod}
  workdir: /srv
  user: "1000"
  expose: [8080, 53/udp]
  labels: {org.example.team: build}
  volumes: [/data]
  stopsignal: SIGTERM
`})
	out := filepath.Join(t.TempDir(), "layout")
	mustKiln(t, root, "build", "--output", "type=oci,dest="+out, dir)
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
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	got := v1.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, User: c.User,
		ExposedPorts: c.ExposedPorts, Labels: c.Labels, Volumes: c.Volumes, StopSignal: c.StopSignal}
	want := v1.Config{Entrypoint: []string{"/bin/echo", "hi"}, WorkingDir: "/srv", User: "1000",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}}, Labels: map[string]string{"org.example.team": "build"},
		Volumes: map[string]struct{}{"/data": {}}, StopSignal: "SIGTERM"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image config (-want +got):\n%s", diff)
	}
	if !slices.Contains(c.Env, "MODE=prod") {
		t.Errorf("env %q lacks MODE=prod", c.Env)
	}
}
