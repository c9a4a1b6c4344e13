package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/toolbox"
)

// staticCC reports whether a C compiler here links static programs,
// which the Makefile's build (KILN_CGO) needs for kiln with cgo.
func staticCC() bool {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	cmd := exec.Command(cc, "-static", "-x", "c", "-o", os.DevNull, "-")
	cmd.Stdin = strings.NewReader("int main(void){return 0;}\n")
	return cmd.Run() == nil
}

// releaseKiln builds kiln into out as `make build` does: static, with
// cgo (nsjoin's constructor, the rootless fast start) when cgo is true,
// else without.
func releaseKiln(t *testing.T, out string, cgo bool) {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = "/usr/local/go/bin/go"
	}
	args := []string{"build", "-tags", "osusergo,netgo", "-o", out}
	env := "CGO_ENABLED=0"
	if cgo {
		args = append(args, "-ldflags", "-linkmode external -extldflags -static")
		env = "CGO_ENABLED=1"
	}
	cmd := exec.Command(gocmd, append(args, ".")...)
	cmd.Env = append(os.Environ(), env)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kiln (%s): %v\n%s", env, err, out)
	}
	if ok, err := toolbox.Static(out); err != nil || !ok {
		t.Fatalf("%s is not static (%v)", out, err)
	}
}
