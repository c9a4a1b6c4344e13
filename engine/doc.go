// Package engine defines the contracts of kiln's isolation engine: the
// [Mount] that a snapshotter emits and a container consumes, the
// [Snapshotter] that prepares a writable root filesystem over read-only
// layers, and the [Runtime] that runs processes in isolated containers.
//
// The package holds types and small helpers only. Implementations live in
// sibling packages: snapshot (overlayfs and a copying fallback) and
// container (Linux namespaces, pivot_root, cgroups). The conformance suite
// in engine/enginetest checks any implementation of these interfaces.
//
// # Running a step
//
// A build step is one container on one snapshot:
//
//	mounts, _ := sn.Prepare(ctx, key, layerDirs)    // fresh writable layer
//	c, _ := rt.Create(ctx, engine.Spec{ID: key, Rootfs: mounts, Process: p})
//	status, _ := c.Wait(ctx)                         // exit status of the process
//	_ = c.Delete(ctx)                                // processes, mounts, cgroups gone
//	_ = sn.Diff(ctx, key, w)                         // the step's changes as a layer tar
//	_ = sn.Remove(ctx, key)
package engine
