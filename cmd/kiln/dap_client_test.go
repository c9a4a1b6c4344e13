package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dapClientDir is the JS project that drives kiln dap with VS Code's
// debug adapter test client (@vscode/debugadapter-testsupport).
const dapClientDir = "testdata/dap-client"

// TestDAPClient runs testdata/dap-client/test.js: kiln dap, started in /
// as an editor may start it, driven by a real DAP client through the
// README's launch.json, breakpoints on a RUN and a CMD, stops, next,
// continue, a failure that cancels a branch, disconnect and terminate.
// It needs node and npm (Debian's nodejs and npm; .ci/run installs
// them) and runs npm ci when the client's packages are not installed.
func TestDAPClient(t *testing.T) {
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		t.Skip("node and npm are needed to run a real DAP client: apt-get install nodejs npm (.ci/run does)")
	}
	dir, err := filepath.Abs(dapClientDir)
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, npm, dir)
	root := buildRoot(t)

	// kiln is this test binary in kiln mode (KILN_TEST_MAIN), with the
	// test's root.
	for _, p := range []string{os.Args[0], root} {
		if strings.ContainsAny(p, `'\`) {
			t.Fatalf("cannot quote %q for sh", p)
		}
	}
	adapter := filepath.Join(t.TempDir(), "kiln")
	script := "#!/bin/sh\nKILN_TEST_MAIN=1 exec '" + os.Args[0] + "' --root '" + root + "' \"$@\"\n"
	if err := os.WriteFile(adapter, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	readme, err := filepath.Abs("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test-reporter=spec", "test.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KILN="+adapter, "KILN_README="+readme, "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node test.js: %v\n%s", err, out)
	}
	t.Logf("node test.js:\n%s", out)
}

// npmCI installs the client's packages from package-lock.json, unless
// the installed ones were installed from the lock file as it is.
func npmCI(t *testing.T, npm, dir string) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if inst, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && inst.ModTime().After(lock.ModTime()) {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s (it needs the npm registry, or the packages in npm's cache): %v\n%s", dir, err, out)
	}
}
