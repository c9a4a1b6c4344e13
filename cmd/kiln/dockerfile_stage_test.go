package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildDockerfileStage builds a YAML manifest whose first stage is a
// Dockerfile's target: the YAML stage runs on it and copies from it, and
// the Dockerfile's stage the target does not need is not built.
func TestBuildDockerfileStage(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox AS gen
RUN echo generated > /gen.txt
FROM busybox AS broken
RUN exit 1
FROM gen AS build
ARG VERSION=0
ENV VERSION=$VERSION
COPY --from=gen /gen.txt /out/
COPY src.txt /out/
`,
		"src.txt": "from the context\n",
		"kiln.yml": `stages:
  base:
    dockerfile: ./Dockerfile
    target: build
    args: {VERSION: "1.2"}
  app:
    from: base
    steps:
      - run: echo "v$VERSION" > /version
      - copy: {from: base, src: /out/src.txt, dst: /app/}
`,
	})
	r := mustKiln(t, root, "build", "-f", filepath.Join(dir, "kiln.yml"), "-t", "bridge", dir)
	if got := r.stderr; strings.Contains(got, "exit 1") {
		t.Errorf("the unused Dockerfile stage was built:\n%s", got)
	}
	got := mustKiln(t, root, "run", "bridge", "--", "cat", "/version", "/out/gen.txt", "/app/src.txt").stdout
	if want := "v1.2\ngenerated\nfrom the context\n"; got != want {
		t.Errorf("the image holds %q, want %q", got, want)
	}
}
