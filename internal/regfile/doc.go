// Package regfile provides reading a regular file that kiln does not
// trust: one a repository controls (a manifest, its lock file, a
// Dockerfile, a module, a template or an ignore file, found in a build
// context or a manifest's directory), or one of an image's root
// filesystem read from the host (its /etc/passwd and /etc/group).
//
// A repository's name is resolved inside its directory (openat2 with
// RESOLVE_BENEATH): symbolic links work while they stay inside it, and one
// that leads out is refused before anything is read, so that no error can
// quote another file's content. A root filesystem's name is resolved as if
// the root were "/" (RESOLVE_IN_ROOT), as the container would see it.
// Only a regular file is opened for reading: the name is first opened
// with O_PATH, which opens nothing, and its type checked, so that a FIFO,
// socket or device is refused, naming it and its type, instead of
// blocking kiln or being read.
package regfile
