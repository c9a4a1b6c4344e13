//go:build linux && !amd64

package container

import (
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/seccompfilter"
)

// seccompProgram compiles the seccomp filter: no program compiled ahead
// of time exists for this architecture (see seccomp_linux.go).
func seccompProgram() ([]unix.SockFilter, error) { return seccompfilter.Compile() }
