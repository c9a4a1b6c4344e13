package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestSecretsMaskedInOutput runs steps that print a secret: no progress
// view (plain or JSON) and no error message shows its value.
func TestSecretsMaskedInOutput(t *testing.T) {
	enginetest.RequireRoot(t)
	const secret = "s3cr3t-v4lue-2b2"
	t.Setenv("KILN_TEST_TOKEN", secret)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	dir := t.TempDir()
	df := "FROM busybox\n" +
		"RUN --mount=type=secret,id=tok echo \"the token is $(cat /run/secrets/tok)\"\n" +
		"RUN --mount=type=secret,id=tok cat /run/secrets/tok; echo; false\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, progress := range []string{"plain", "json"} {
		r := kiln(t, root, nil, "build", "--no-cache", "--progress", progress, "--secret", "id=tok,env=KILN_TEST_TOKEN", dir)
		if r.code == 0 {
			t.Fatalf("%s: the failing step did not fail the build", progress)
		}
		out := r.stdout + r.stderr
		if strings.Contains(out, secret) {
			t.Errorf("%s: the secret's value was printed:\n%s", progress, out)
		}
		if !strings.Contains(out, "the token is ****") {
			t.Errorf("%s: the masked line is missing:\n%s", progress, out)
		}
	}
}
