package dap

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLaunchResolve: a launch's relative paths are relative to its cwd,
// else to the manifest's directory; never to kiln dap's own working
// directory.
func TestLaunchResolve(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   LaunchArgs
		want LaunchArgs
		err  string
	}{{
		name: "the README's launch.json: relative values, no cwd",
		in:   LaunchArgs{Manifest: "/ws/app.yml", Context: "/ws", Values: []string{"dev.yml", "/etc/v.yml"}},
		want: LaunchArgs{Manifest: "/ws/app.yml", Context: "/ws", Values: []string{"/ws/dev.yml", "/etc/v.yml"}},
	}, {
		name: "relative to cwd",
		in:   LaunchArgs{Manifest: "sub/app.yml", Cwd: "/ws", Context: ".", Values: []string{"v/dev.yml"}, Root: "../root"},
		want: LaunchArgs{Manifest: "/ws/sub/app.yml", Cwd: "/ws", Context: "/ws", Values: []string{"/ws/v/dev.yml"}, Root: "/root"},
	}, {
		name: "context relative to the manifest's directory",
		in:   LaunchArgs{Manifest: "/ws/sub/Dockerfile", Context: ".."},
		want: LaunchArgs{Manifest: "/ws/sub/Dockerfile", Context: "/ws"},
	}, {
		name: "a relative manifest without cwd",
		in:   LaunchArgs{Manifest: "app.yml"},
		err:  `"manifest" is "app.yml", a relative path, and there is no "cwd"`,
	}, {
		name: "a relative cwd",
		in:   LaunchArgs{Manifest: "app.yml", Cwd: "ws"},
		err:  `"cwd" is "ws": it must be an absolute path`,
	}, {
		name: "no manifest",
		in:   LaunchArgs{Cwd: "/ws"},
		err:  `launch needs "manifest"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			err := got.resolve()
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("resolve() = %v, want an error with %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("resolved (-want +got):\n%s", diff)
				}
			}
		})
	}
}
