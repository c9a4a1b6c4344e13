package rootless

import "testing"

func TestNeedsNamespace(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false}, // kiln alone prints its help
		{[]string{"version"}, false},
		{[]string{"version", "--format", "json"}, false},
		{[]string{"help", "build"}, false},
		{[]string{"--help"}, false},
		{[]string{"-h"}, false},
		{[]string{"completion", "bash"}, false},
		{[]string{"__complete", "run", ""}, true}, // may list the store's images
		{[]string{"build", "."}, true},
		{[]string{"images"}, true},
		{[]string{"run", "busybox", "--", "version"}, true},
		{[]string{"--root", "/r", "version"}, true}, // a global flag first: not parsed here
		{[]string{"build", "--help"}, true},
	} {
		if got := needsNamespace(tc.args); got != tc.want {
			t.Errorf("needsNamespace(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
