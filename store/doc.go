// Package store provides kiln's local image store: a directory (the CLI's
// --root, /var/lib/kiln by default) that holds images by name, their blobs,
// and their layers unpacked for the snapshotters.
//
// The layout under the root is:
//
//	oci/               an OCI image layout holding every blob by sha256; an
//	                   image is named by an entry of oci/index.json whose
//	                   org.opencontainers.image.ref.name annotation is the
//	                   full local name ("busybox:latest", "127.0.0.1:5000/app:1")
//	oci/index.lock     flock(2)ed around every read-modify-write of index.json
//	layers/<diffid>/   each layer unpacked once, in overlay form (whiteouts are
//	                   0/0 character devices, opaque directories carry the
//	                   trusted.overlay.opaque xattr), shared read-only
//	layertrees/<diffid> the layer.TreeDigests of layers/<diffid>, written
//	                   when it is unpacked or adopted (see Integrity)
//	tmp/<pid>-<rand>   work files and directories of a running kiln process;
//	                   Open removes those whose process is gone
//
// Several kiln processes may share a root. Blobs and layer directories are
// made in tmp/ and renamed into place, so they appear whole or not at all and
// need no lock; index.json is only rewritten (to a temp file, then renamed)
// while holding the flock on oci/index.lock, so readers never need the lock.
//
// # Integrity
//
// Every read of a blob checks it against its digest: manifests and configs
// when an image is read, layers as they stream (a layer's Compressed and
// Uncompressed readers fail at their end with a [CorruptBlobError] naming
// the blob, before an export, a push or an unpack commits anything). An
// oci-layout: input is read the same way. A layer directory handed out by
// LayerDirs, LayerDir or AdoptLayerDir is first checked against the digests
// kept when it was made: its metadata digest (lstat only, once per Store),
// then, if that differs, its whole tree; a changed one fails with an error
// wrapping [ErrLayerDirChanged]. [Store.VerifyBlob] and
// [Store.VerifyLayerDir] check eagerly; kiln cache verify --repair removes
// what fails, and a removed layer directory is unpacked again on next use.
//
// # Garbage collection
//
// Remove untags an image and then, under the index lock, collects garbage.
// The roots are every descriptor of oci/index.json (named or not, so another
// package may keep blobs alive by adding an unnamed entry). A blob that no root
// reaches is removed only if its modification time is older than [GCGrace];
// every writer (WriteLayer, Tag) sets the modification time of each blob it
// writes or reuses to now, and Tag checks again under the lock that all its
// blobs exist before it names them, rewriting any that a collection removed
// meanwhile. A blob written by WriteLayer and not tagged within GCGrace may
// therefore be collected. A layers/<diffid> directory that no root's config
// lists is removed when its change time (bumped on every LayerDirs call that
// returns it) is older than GCGrace. Nothing protects a layer directory that
// a long-lived overlay mount still uses after its image has been removed.
package store
