// Package container provides facilities for running processes in
// isolated Linux containers: kiln's own runtime, with no daemon and no
// runc.
//
// # How a container starts
//
// [Runtime.Create] re-executes the running binary (/proc/self/exe), or the
// program given [WithInit], as the container's init, in new mount, PID,
// UTS and IPC namespaces (and a new network namespace for
// [engine.NetworkNone]). The binary must therefore call [Main] first thing
// in main (and in TestMain of tests that create containers): Main returns
// false in a normal process, and never returns in a container's init.
// kiln passes the cmd/kiln-init beside it, when [Companion] finds one
// built from the same sources: a program of Main alone starts in a
// fraction of the CLI's time.
//
// The init reads its configuration from a pipe, mounts the root
// filesystem and /proc, /dev, /sys inside its own mount namespace, masks
// the kernel paths that Docker masks, pivot_roots into the root, drops to
// Docker's default capability set with no_new_privs, switches user and
// execs the process, which so becomes PID 1 of the container. Every mount
// lives only in the container's mount namespace: when PID 1 exits, the
// kernel kills the rest of the container and the mounts go with it, so
// nothing can leak even when kiln itself is killed. Processes are
// confined in a cgroup (package engine/cgroup) for the pids, memory and CPU
// limits and, on cgroup v1, a device allow-list.
//
// # User namespaces
//
// With [WithUserNS], each container's init is also cloned into a user
// namespace of its own, on a range of host ids taken for it (package
// engine/idrange). The init cannot make idmapped mounts or mount
// overlayfs with kiln's xattrs from there, so the runtime makes the root
// filesystem (an overlay over idmapped layers and upper directory) and
// the bind and overlay mounts beforehand, as detached mounts passed to
// the init, which attaches them (userns_linux.go).
//
// # Exec
//
// Go cannot join an existing mount namespace from a multithreaded
// process, so Exec does not use setns. Instead, when [engine.Spec.Exec]
// is set, the init starts a small helper inside the container before it
// execs PID 1. The helper receives requests over a socket, with the stdio
// file descriptors passed as SCM_RIGHTS, and starts each process from a
// locked OS thread whose capabilities it has dropped first.
//
// # Size
//
// The package is above the ~1,500 lines kiln's packages keep to (about
// 3,100): the runtime and the container's init are one program on both
// sides of a re-exec (runtime_linux.go starts it, init_linux.go with
// rootfs, caps, seccomp, user and the exec helper run inside), speaking a
// private protocol (config.go) that no other package may depend on. The
// cgroups it confines containers in are a package of their own
// (engine/cgroup).
package container
