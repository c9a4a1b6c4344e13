package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestEscapeBindMountFromStage resolves a RUN --mount=type=bind,from=STAGE
// source inside the stage, as the stage's own steps see it: an absolute
// link in the stage leads to the stage's file, never to the host's file
// of the same path, and a link naming a host directory finds nothing.
func TestEscapeBindMountFromStage(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("HOST-MARKER\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stage := "FROM busybox AS s\nRUN mkdir -p " + host + " /data && echo inside > /data/f && echo stage > " + host + "/f && ln -s /data /abs && ln -s " + host + " /hostlink && rm -rf " + host + "\n"
	for _, tc := range []struct {
		name, source, want, refused string
	}{
		{"absolute link inside the stage", "/abs", "inside", ""},
		{"link to a host directory", "/hostlink", "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df := stage + "FROM busybox\nRUN --mount=type=bind,from=s,source=" + tc.source + ",target=/m cat /m/f\n"
			dir := writeContext(t, map[string]string{"Dockerfile": df})
			r := kiln(t, root, nil, "build", "--progress", "plain", "-f", filepath.Join(dir, "Dockerfile"), dir)
			out := r.stdout + r.stderr
			if strings.Contains(out, "HOST-MARKER") {
				t.Fatalf("the step read the host's file:\n%s", out)
			}
			if tc.refused != "" {
				if r.code == 0 || !strings.Contains(out, tc.refused) {
					t.Fatalf("exit %d, want the build refused with %q:\n%s", r.code, tc.refused, out)
				}
				return
			}
			if r.code != 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want the step to print %q:\n%s", r.code, tc.want, out)
			}
		})
	}
}
