// Package store provides kiln's local image store: a directory (the CLI's
// --root, /var/lib/kiln by default) that holds images by name, their blobs,
// and their layers unpacked for the snapshotters.
//
// The layout under the root is:
//
//	oci/               an OCI image layout holding every blob by sha256; an
//	                   image is named by an entry of oci/index.json whose
//	                   org.opencontainers.image.ref.name annotation is the
//	                   full name, as docker normalises it (FullName:
//	                   "docker.io/library/busybox:latest" for busybox,
//	                   "127.0.0.1:5000/app:1"); an entry without it is an
//	                   untagged image (see below)
//	oci/index.lock     flock(2)ed around every read-modify-write of index.json
//	layers/<diffid>/   each layer unpacked once, in overlay form (whiteouts are
//	                   0/0 character devices, opaque directories carry the
//	                   trusted.overlay.opaque xattr), shared read-only; a
//	                   step's layer is its overlay upperdir, kept here as
//	                   the layer's only copy (see Layers kept as directories)
//	lazy/<diffid>      the record of a layer whose tar blob the store does
//	                   not have: a registry's, not fetched (PutLazyLayer),
//	                   or one kept as its layer directory (CommitLayerDir)
//	layertrees/<diffid> the layer.TreeDigests of layers/<diffid>, written
//	                   when it is unpacked or adopted, and the epoch in
//	                   which it was last made or checked (see Integrity)
//	layerchecks.epoch  the current epoch: the boot's id and a random part,
//	                   renewed after a crash (see Integrity)
//	tmp/<pid>-<rand>   work files and directories of a running kiln process;
//	                   Open removes those whose process is gone
//
// Several kiln processes may share a root. Blobs and layer directories are
// made in tmp/ and renamed into place, so they appear whole or not at all and
// need no lock; index.json is only rewritten (to a temp file, then renamed)
// while holding the flock on oci/index.lock, so readers never need the lock.
//
// Every name given to the store (Tag, Image, Remove) is normalised so: busybox,
// busybox:latest and docker.io/library/busybox are one name. An entry that
// an older kiln wrote as given ("busybox:latest") is the same name too.
// List and Name print names as docker does (Familiar: "busybox:latest").
//
// # Integrity
//
// Every read of a blob checks it against its digest: manifests and configs
// when an image is read, layers as they stream (a layer's Compressed and
// Uncompressed readers fail at their end with a [CorruptBlobError] naming
// the blob, before an export, a push or an unpack commits anything). An
// oci-layout: input is read the same way. A layer directory handed out by
// LayerDirs, LayerDir or AdoptLayerDir is first checked against the digests
// kept when it was made: its metadata digest (lstat only), then, if that
// differs, its whole tree; a changed one is removed and made again from the
// layer's blob (or a step's new diff), with a warning ([WithWarnings]).
// This check runs once per epoch, not on every use: an epoch lasts until a
// crash may have touched the layer directories (a new boot, a dead
// process's tmp/ entries swept by Open, or [Store.DistrustLayerDirs], which
// kiln calls when it sweeps a crashed kiln's snapshots). A directory
// changed by hand between clean runs is found by [Store.VerifyLayerDir]
// (kiln cache verify), not by its next use. kiln leaves a layer
// directory's data for the kernel to write back (as containerd's
// snapshotters do) instead of syncing the file system at each commit: a
// directory's record names the boot that wrote it, and its first use in a
// later boot hashes its whole tree, read back from the disk, so a power
// loss that kept its inodes and lost its data is caught. [Store.VerifyBlob] and
// [Store.VerifyLayerDir] check eagerly; kiln cache verify --repair removes
// what fails, and a removed layer directory is unpacked again on next use.
//
// # Layers kept as directories
//
// [Store.CommitLayerDir] commits a step's overlay upperdir without writing
// its tar: one pass hashes the tar (its diffID) and each file (the tree
// digests), and the upperdir becomes layers/<diffid>. Its blob, named by
// the diffID, is then lazy: whatever reads it (an export, a push, a cache
// export or verify) gets the tar written again from the directory and
// checked against the diffID as it streams, so a changed directory fails
// there rather than giving another layer. Collection keeps the directory
// while an image or a reference lists the layer; removed otherwise (kiln
// cache verify --repair of a changed one), the layer is gone: a cache
// record of it is damaged and its step runs again. Its data is left for
// the kernel to write back, as every layer directory's is: its record
// names the boot that wrote it, and the first use in a later boot hashes
// the whole directory (see Integrity), so a power loss that kept its
// inodes and lost its data makes its step run again rather than give a
// damaged layer.
//
// # Untagged images
//
// An image that a build made without -t (or a pull without a name) is kept
// untagged by [Store.Keep], as docker keeps a dangling image: an entry of
// index.json without a name, found by its digest ("sha256:" and 12 to 64 hex
// digits, or 12 to 64 hex digits alone) and kept by collection until
// [Store.Remove] removes it by digest (kiln rmi DIGEST; kiln images -q
// --filter dangling=true lists them) or [Store.Tag] names it. An image has
// at most one untagged entry, and none once it has a name. Naming another
// image with a name an image had does not keep that image untagged: as
// before, it is collected unless something else keeps it.
//
// # Garbage collection
//
// Remove untags an image and then, under the index lock, collects garbage.
// The roots are every descriptor of oci/index.json, named or not. A blob that no root
// reaches is removed only if its modification time is older than [GCGrace];
// every writer (WriteLayer, Tag) sets the modification time of each blob it
// writes or reuses to now, and Tag checks again under the lock that all its
// blobs exist before it names them, rewriting any that a collection removed
// meanwhile. A blob written by WriteLayer and not tagged within GCGrace may
// therefore be collected. A layers/<diffid> directory that no root's config
// lists is removed when its change time (bumped on every LayerDirs call that
// returns it) is older than GCGrace. Nothing protects a layer directory that
// a long-lived overlay mount still uses after its image has been removed.
//
// # Size
//
// The package is above the ~1,500 lines kiln's packages keep to (about
// 2,600): the index, blobs, unpacked layer directories, garbage collection,
// verification and transports all read and write the one on-disk layout
// above under one lock; a split would have to export that layout. Layer
// tars themselves are package image/layer's.
package store
