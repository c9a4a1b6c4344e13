package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
)

// TestExitCodes runs kiln with input that is wrong, builds that fail and
// builds that succeed: each ends with the status a CI system can act on
// (0 success, 1 a step or test failed, 2 the input is wrong), and the
// help lists those statuses.
func TestExitCodes(t *testing.T) {
	root := buildRoot(t)
	ok := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo ok > /ok\n"})
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"success", []string{"build", "--progress", "plain", ok}, 0},
		{"unknown flag", []string{"build", "--nosuchflag", ok}, 2},
		{"unknown command", []string{"nosuchcommand"}, 2},
		{"too many arguments", []string{"build", ok, ok}, 2},
		{"bad flag value", []string{"build", "--progress", "bogus", ok}, 2},
		{"bad --output", []string{"build", "--output", "type=zip", ok}, 2},
		{"no manifest", []string{"build", t.TempDir()}, 2},
		{"missing values file", []string{"build", "--values", filepath.Join(t.TempDir(), "nosuch.yml"), ok}, 2},
		{"undefined variable", []string{"build", writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo {{ nosuchvar }}\n"})}, 2},
		{"unknown key", []string{"build", writeContext(t, map[string]string{"kiln.yml": "from: busybox\nstepz:\n  - run: echo hi\n"})}, 2},
		{"missing base", []string{"build", writeContext(t, map[string]string{"kiln.yml": "from: nosuchimage\nsteps:\n  - run: echo hi\n"})}, 2},
		{"missing copy source", []string{"build", writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - copy: {src: nosuchfile, dst: /x}\n"})}, 2},
		{"inspect: unknown image", []string{"inspect", "nosuchimage"}, 2},
		{"run: unknown image, as docker run", []string{"run", "nosuchimage"}, 125},
		{"run: the container's status", []string{"run", "busybox", "--", "sh", "-c", "exit 2"}, 2},
		{"render: bad manifest", []string{"render", "-f", filepath.Join(writeContext(t, map[string]string{"kiln.yml": "from: busybox\nstepz: []\n"}), "kiln.yml")}, 2},
		{"failing step", []string{"build", writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: exit 7\n"})}, 1},
		{"failing test", []string{"build", writeContext(t, map[string]string{"kiln.yml": "from: busybox\ntests:\n  - name: t\n    run: exit 3\n"})}, 1},
		{"step timeout", []string{"build", "--timeout", "200ms", writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: sleep 5\n"})}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kiln(t, root, nil, tt.args...)
			if r.code != tt.want {
				t.Errorf("kiln %s: exit %d, want %d\nstderr: %s", strings.Join(tt.args, " "), r.code, tt.want, r.stderr)
			}
			if tt.want != 0 && tt.args[0] != "run" && !strings.HasPrefix(r.stderr, "kiln: ") && !strings.Contains(r.stderr, "\nkiln: ") {
				t.Errorf("a failure said nothing on stderr: %q", r.stderr)
			}
		})
	}

	help := mustKiln(t, root, "--help").stdout
	for _, want := range []string{"Exit status", "0 ", "1 ", "2 ", "130 ", "125 "} {
		if !strings.Contains(help, want) {
			t.Errorf("kiln --help does not list %q:\n%s", want, help)
		}
	}
}

// TestExitStatus checks which status each kind of error gives, and that
// an interrupt wins over the error it caused.
func TestExitStatus(t *testing.T) {
	live := t.Context()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	step := withCode(exitFailed, errors.New("build failed: step failed"))
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		err     error
		started bool
		want    int
	}{
		{"success", live, nil, true, 0},
		{"cobra refused the flags", live, errors.New("unknown flag: --x"), false, 2},
		{"manifest error", live, fmt.Errorf("loading: %w", manifest.Errorf(manifest.Pos{File: "kiln.yml", Line: 1}, "bad")), true, 2},
		{"unknown image", live, fmt.Errorf("inspecting x: %w", store.ErrNotFound), true, 2},
		{"bad input", live, badInput(errors.New("--memory: bad")), true, 2},
		{"step failed", live, step, true, 1},
		{"exit status of its own", live, exitError{3}, true, 3},
		{"interrupted", cancelled, step, true, 130},
		{"interrupted while loading", cancelled, badInput(context.Canceled), true, 130},
		{"kiln's trouble", live, errors.New("disk full"), true, 125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitStatus(tc.ctx, tc.err, tc.started); got != tc.want {
				t.Errorf("exitStatus(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}
