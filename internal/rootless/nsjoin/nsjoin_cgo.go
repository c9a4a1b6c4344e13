//go:build linux && cgo

package nsjoin

/*
extern int kiln_nsjoin_state;
extern int kiln_nsjoin_errno;
extern const char *kiln_nsjoin_step;
#include <limits.h>
extern char kiln_nsjoin_file[PATH_MAX];
*/
import "C"

import (
	"fmt"
	"syscall"

	"github.com/kiln-build/kiln/internal/rootless"
)

// Joined returns what the constructor did when the process started.
func Joined() rootless.Holder {
	r := rootless.Holder{Available: true, Path: C.GoString(&C.kiln_nsjoin_file[0])}
	switch C.kiln_nsjoin_state {
	case 1:
		r.Joined = true
	case -1:
		r.Err = fmt.Errorf("%s: %w", C.GoString(C.kiln_nsjoin_step), syscall.Errno(C.kiln_nsjoin_errno))
	}
	return r
}
