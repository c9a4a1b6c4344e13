// Package nsjoin joins a rootless kiln to its user's long-lived user
// namespace before the Go runtime starts, so that a command pays neither
// newuidmap and newgidmap nor a second start of kiln.
//
// A user namespace can only be entered (setns) by a single-threaded
// process, which a Go program never is once its runtime runs: the join is
// a C constructor, as runc's nsenter and rootless Podman's pause-process
// join are. It acts only when all of these hold: the process is not root;
// it is kiln's command line, not a test binary (an executable whose name
// ends in .test), a container's init or exec helper (argv[0]
// kiln-container-*) or the toolbox's kiln in a container
// (/.kiln/bin/kiln); KILN_USERNS_NOJOIN is unset; and the holder file
// (rootless.Holder.Path) belongs to the user, in a directory only the
// user can write, and names a live process whose user namespace has the
// inode the file records and is owned by the user. It then enters that user namespace and a new mount namespace of
// its own (whose mounts die with the process). Otherwise it does nothing.
// [Joined] says what it did, as a [rootless.Holder].
//
// The holder itself (a sleeping process in the namespace, its id maps
// written by newuidmap and newgidmap) is made by package rootless, which
// a kiln built without cgo uses alone (a fresh namespace per command).
// Only cmd/kiln imports this package.
package nsjoin
