// Package seccompfilter compiles the seccomp filter of kiln's build
// containers, after Docker's default profile, with go-seccomp-bpf.
//
// The container init does not compile it where a program compiled ahead
// of time exists for the architecture (engine/container's
// zseccomp_linux_amd64.go, checked against Compile by its tests): this package
// and go-seccomp-bpf, whose system call tables are built when it
// initialises, then stay out of the init's binary and start-up.
package seccompfilter
