// Package layer provides facilities for turning directories into OCI layer
// tarballs (uncompressed tar streams) and back.
//
// # Layer directories
//
// A layer directory holds one unpacked layer in overlay form, ready to be used
// as an overlayfs lowerdir: a deleted path is a character device 0/0 named
// like the path, and an opaque directory carries the extended attribute
// trusted.overlay.opaque=y. In a layer tar (OCI form) the same changes are an
// empty regular file named .wh.NAME and an entry DIR/.wh..wh..opq.
//
// [Extract] turns a tar into a layer directory, [WriteOverlayDiff] turns an
// overlayfs upperdir (which is already in overlay form) into a tar,
// [WriteDiff] compares a plain directory with the merged view of layer
// directories, [WriteDir] archives a whole tree and [Merge] flattens layer
// directories into one root filesystem.
//
// # Tar output
//
// Every writer produces the same bytes for the same tree: entries come in
// lexical order of their names within each directory, parents before
// children; names are relative, without a leading "/" or "./", and directory
// names end in "/"; user and group names, access and change times are left
// out; the PAX format is used only when an entry needs it (nanosecond mtimes,
// extended attributes, long names). Extended attributes are written as
// SCHILY.xattr. records, except trusted.overlay.*, which belong to overlayfs.
// Unix sockets are skipped.
//
// # Size
//
// The package is slightly above the ~1,500 lines kiln's packages keep to
// (about 1,800): both directions (directory → tar, tar → directory) and
// the merge share the whiteout conventions above and the file-system
// primitives (fs.go: directory reads, stats, extended attributes), which
// must stay one implementation.
package layer
