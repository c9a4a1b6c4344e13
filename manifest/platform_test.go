package manifest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/image/platform"
)

// TestPlatformArgs builds a Dockerfile for linux/arm64: the automatic
// args are BuildKit's (TARGET* the target's, BUILD* the host's), and a
// stage FROM --platform=$BUILDPLATFORM keeps the host's platform while
// the others take the build's.
func TestPlatformArgs(t *testing.T) {
	dir := t.TempDir()
	df := `FROM --platform=$BUILDPLATFORM busybox AS build
ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDARCH
RUN echo build
FROM busybox
COPY --from=build /x /x
`
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	arm64, _ := platform.Parse("linux/arm64")
	b, err := Load(context.Background(), filepath.Join(dir, "Dockerfile"), Options{Platform: arm64})
	if err != nil {
		t.Fatal(err)
	}
	if b.Platform != "linux/arm64" {
		t.Errorf("Build.Platform = %q, want linux/arm64", b.Platform)
	}
	host := platform.Host()
	if got := b.Stages[0].Platform; got != host.String() && host != arm64 {
		t.Errorf("the build stage's platform = %q, want the host's %s", got, host)
	}
	if got := b.Stages[1].Platform; got != "" {
		t.Errorf("the target stage's platform = %q, want the build's (\"\")", got)
	}
	env := map[string]string{}
	for _, kv := range b.Stages[0].Steps[0].RunEnv {
		env[kv.Key] = kv.Value
	}
	want := map[string]string{"TARGETPLATFORM": "linux/arm64", "TARGETOS": "linux", "TARGETARCH": "arm64", "TARGETVARIANT": "",
		"BUILDPLATFORM": host.String(), "BUILDARCH": host.Arch}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("RUN sees %s=%q (set: %v), want %q", k, got, ok, v)
		}
	}
}

// TestPlatformYAML: platforms: is read and checked, from: {image,
// platform: build} gives the stage the host's platform, and templates
// see target.arch.
func TestPlatformYAML(t *testing.T) {
	dir := t.TempDir()
	yml := `platforms: [linux/amd64, linux/arm64]
stages:
  build:
    from: {image: busybox, platform: build}
    steps: [echo {{ target.arch }}]
  main:
    from: busybox
    steps:
      - copy: {from: build, src: /x, dst: /x}
`
	if err := os.WriteFile(filepath.Join(dir, "app.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	arm64, _ := platform.Parse("linux/arm64")
	b, err := Load(context.Background(), filepath.Join(dir, "app.yml"), Options{Platform: arm64})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Platforms) != 2 || b.Platforms[1] != "linux/arm64" {
		t.Errorf("Platforms = %v", b.Platforms)
	}
	if b.Stages[0].Platform != platform.Host().String() || b.Stages[1].Platform != "" {
		t.Errorf("stage platforms %q, %q; want the host's and none", b.Stages[0].Platform, b.Stages[1].Platform)
	}
	if got := b.Stages[0].Steps[0].Run.Shell; got != "echo arm64" {
		t.Errorf("the step is %q, want echo arm64", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("platforms: [windows/amd64]\nfrom: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), filepath.Join(dir, "bad.yml"), Options{}); err == nil {
		t.Error("platforms: [windows/amd64] loaded, want an error")
	} else if want := "bad.yml:1:"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not give the position %s", err, want)
	}
}
