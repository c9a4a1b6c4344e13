// Package snapshot provides facilities for preparing the writable root
// filesystems of containers over read-only layer directories: an
// overlayfs snapshotter, and a copying fallback for hosts where overlayfs
// cannot mount (a root on overlayfs itself, some container sandboxes).
// [New] probes the host and picks one, and says which and why.
//
// Both implement [engine.Snapshotter] and pass the same conformance suite
// (engine/enginetest). Both return mounts and never mount anything in the
// host's namespace: the container runtime mounts them in the container's.
//
// On disk, under the directory given to New, each snapshot is a
// directory named by its key holding the writable layer, a work
// directory (overlayfs), the list of its parents (copy) and an owner
// record naming the kiln process that prepared it, so that [Sweep] can
// remove what a crashed kiln left behind.
package snapshot
