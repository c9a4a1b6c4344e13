package container

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp filter of build containers is engine/seccompfilter's
// (after Docker's default profile). On amd64 its BPF program is compiled
// ahead of time into zseccomp_linux_amd64.go, by
//
//	go test -run TestSeccompProgram ./engine/container/ -update-seccomp
//
// and TestSeccompProgram checks that the file holds what
// seccompfilter.Compile compiles today; the init loads it as it is.
// Compiling it in the init, with go-seccomp-bpf's system call tables
// built when that package initialises, cost every container start a few
// hundred microseconds. Elsewhere the init compiles it
// (seccomp_compile_linux.go).

// loadSeccomp installs the filter on the calling OS thread, which execs
// right after: the filter is inherited across execve and by every child.
// It sets no_new_privs first, as an unprivileged filter needs.
func loadSeccomp() error {
	prog, err := seccompProgram()
	if err != nil {
		return fmt.Errorf("loading the seccomp filter: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("loading the seccomp filter: failed to set no_new_privs with prctl: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("loading the seccomp filter: %w", errno)
	}
	return nil
}
