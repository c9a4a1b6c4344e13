package enginetest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBusyboxFor checks the foreign busybox fixture with file(1): its
// busybox is the other architecture's, its applets are links to it.
func TestBusyboxFor(t *testing.T) {
	arch := ForeignArch()
	root := BusyboxFor(t, arch)
	if _, err := exec.LookPath("file"); err != nil {
		t.Skip("skipping: file is not installed (apt-get install file)")
	}
	out, err := exec.Command("file", "-b", filepath.Join(root, "bin", "busybox")).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"arm64": "ARM aarch64", "amd64": "x86-64"}[arch]
	if !strings.Contains(string(out), want) {
		t.Errorf("file says %q of the %s busybox, want %q", out, arch, want)
	}
	tree := Tree(t, root)
	if e, ok := tree["bin/sh"]; !ok || e.Link != "busybox" {
		t.Errorf("bin/sh is %+v, want a link to busybox", e)
	}
}
