package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// requireTool skips the test when the program prog is not installed.
func requireTool(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("skipping: %s is not installed (apt-get install %s)", prog, prog)
	}
	return p
}

// TestPushInterop pushes busybox to an OCI layout and a docker archive
// and reads them back with kiln and with the ecosystem's tools.
func TestPushInterop(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	digest := importBusybox(t, root)
	tmp := t.TempDir()
	layoutDir := filepath.Join(tmp, "layout")
	archive := filepath.Join(tmp, "busybox.tar")
	for _, dest := range []string{"oci-layout:" + layoutDir + ":latest", "docker-archive:" + archive} {
		if r := mustKiln(t, root, "push", "busybox", dest); r.stdout != "" || r.stderr != "" {
			t.Errorf("kiln push busybox %s: stdout %q, stderr %q, want none", dest, r.stdout, r.stderr)
		}
	}

	t.Run("kiln run", func(t *testing.T) {
		tests := []struct {
			ref  string
			want string
		}{
			{ref: "oci-layout:" + layoutDir + ":latest", want: "y"},
			{ref: "oci-layout:" + layoutDir, want: "only image"},
			{ref: "docker-archive:" + archive, want: "x"},
		}
		for _, tt := range tests {
			r := kiln(t, root, nil, "run", tt.ref, "--", "echo", tt.want)
			if r.code != 0 || r.stdout != tt.want+"\n" {
				t.Errorf("kiln run %s -- echo %s: exit %d, stdout %q, stderr %q", tt.ref, tt.want, r.code, r.stdout, r.stderr)
			}
		}
		if r := kiln(t, root, nil, "run", "oci-layout:"+layoutDir+":nosuchtag", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "nosuchtag") {
			t.Errorf("kiln run of a missing tag: exit %d, stderr %q: want a failure naming it", r.code, r.stderr)
		}
	})

	t.Run("skopeo inspect", func(t *testing.T) {
		skopeo := requireTool(t, "skopeo")
		out, err := exec.CommandContext(t.Context(), skopeo, "inspect", "oci:"+layoutDir+":latest").Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, stderrOf(err))
		}
		var got struct{ Digest, Os, Created string }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("skopeo inspect printed %s: %v", out, err)
		}
		want := struct{ Digest, Os, Created string }{digest, "linux", "1970-01-01T00:00:00Z"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("skopeo inspect (-want +got):\n%s", diff)
		}
	})

	t.Run("skopeo inspect docker-archive", func(t *testing.T) {
		skopeo := requireTool(t, "skopeo")
		out, err := exec.CommandContext(t.Context(), skopeo, "inspect", "docker-archive:"+archive).Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, stderrOf(err))
		}
		var got struct{ Os string }
		if err := json.Unmarshal(out, &got); err != nil || got.Os != "linux" {
			t.Errorf("skopeo inspect printed %s (%v): want Os linux", out, err)
		}
	})

	t.Run("umoci and runc", func(t *testing.T) {
		umoci := requireTool(t, "umoci")
		runc := requireTool(t, "runc")
		bundle := filepath.Join(t.TempDir(), "bundle")
		if out, err := exec.CommandContext(t.Context(), umoci, "unpack", "--image", layoutDir+":latest", bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack: %v\n%s", err, out)
		}
		setProcessArgs(t, filepath.Join(bundle, "config.json"), "/bin/sh", "-c", "echo hello from runc")
		id := fmt.Sprintf("kiln-test-%d", os.Getpid())
		out, err := exec.CommandContext(t.Context(), runc, "--root", t.TempDir(), "run", "-b", bundle, id).CombinedOutput()
		if err != nil || string(out) != "hello from runc\n" {
			t.Errorf("runc run: %v, output %q, want %q", err, out, "hello from runc\n")
		}
	})
}

// setProcessArgs edits the OCI runtime config file p to run args without
// a terminal.
func setProcessArgs(t *testing.T, p string, args ...string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	proc, ok := cfg["process"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no process object", p)
	}
	proc["args"] = args
	proc["terminal"] = false
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func TestPushRegistry(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	digest := importBusybox(t, root)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dest := host + "/test/busybox:1"

	r := mustKiln(t, root, "push", "busybox", dest)
	if want := host + "/test/busybox@" + digest + "\n"; r.stdout != want {
		t.Errorf("kiln push printed %q, want %q", r.stdout, want)
	}
	ref, err := name.ParseReference(dest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("reading back %s: %v", ref, err)
	}
	got, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != digest {
		t.Errorf("the registry's %s has digest %s, want %s", ref, got, digest)
	}

	if r := kiln(t, root, nil, "push", "nosuch", dest); r.code == 0 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("kiln push nosuch: exit %d, stderr %q: want a failure naming it", r.code, r.stderr)
	}
}
