package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/engine/enginetest"
)

func TestImagesAndRmi(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	digest := importBusybox(t, root)

	r := mustKiln(t, root, "images")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("kiln images printed %q: want a header and one image", r.stdout)
	}
	if diff := cmp.Diff([]string{"NAME", "DIGEST", "SIZE", "CREATED"}, strings.Fields(lines[0])); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	fields := strings.Fields(lines[1])
	if len(fields) != 4 {
		t.Fatalf("image line %q: want 4 columns", lines[1])
	}
	if diff := cmp.Diff([]string{"busybox:latest", digest, "1970-01-01T00:00:00Z"}, []string{fields[0], fields[1], fields[3]}); diff != "" {
		t.Errorf("name, digest and created (-want +got):\n%s", diff)
	}
	// busybox-static is about a megabyte; its layer is compressed.
	if !regexp.MustCompile(`^[0-9.]+(kB|MB)$`).MatchString(fields[2]) {
		t.Errorf("size %q: want a size in kB or MB", fields[2])
	}
	if r := mustKiln(t, root, "images", "-q"); r.stdout != "busybox:latest\n" {
		t.Errorf("kiln images -q printed %q, want %q", r.stdout, "busybox:latest\n")
	}

	tests := []struct {
		name       string
		args       []string
		wantOK     bool
		wantStdout string
		wantStderr string // a substring
		wantImages string // kiln images -q afterwards
	}{
		{name: "unknown", args: []string{"rmi", "nosuch"}, wantStderr: "nosuch", wantImages: "busybox:latest\n"},
		{name: "busybox", args: []string{"rmi", "busybox"}, wantOK: true, wantStdout: "removed busybox\n", wantImages: ""},
		{name: "busybox again", args: []string{"rmi", "busybox"}, wantStderr: "busybox", wantImages: ""},
		{name: "run removed", args: []string{"run", "busybox", "--", "true"}, wantStderr: "busybox", wantImages: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kiln(t, root, nil, tt.args...)
			if (r.code == 0) != tt.wantOK {
				t.Errorf("exit %d, stderr %q: want success %v", r.code, r.stderr, tt.wantOK)
			}
			if r.stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tt.wantStderr)
			}
			if r := mustKiln(t, root, "images", "-q"); r.stdout != tt.wantImages {
				t.Errorf("then kiln images -q printed %q, want %q", r.stdout, tt.wantImages)
			}
		})
	}
}

func TestHumanSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{999, "999B"},
		{1000, "1kB"},
		{1090000, "1.09MB"},
		{5_500_000_000, "5.5GB"},
	}
	for _, tt := range tests {
		if got := humanSize(tt.n); got != tt.want {
			t.Errorf("humanSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
