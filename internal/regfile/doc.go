// Package regfile provides reading a regular file that a repository
// controls: a manifest, its lock file, a Dockerfile, a module, a template
// or an ignore file, found in a build context or a manifest's directory.
//
// A name is resolved inside its directory (openat2 with RESOLVE_BENEATH):
// symbolic links work while they stay inside it, and one that leads out is
// refused before anything is read, so that no error can quote another
// file's content. Only a regular file is opened for reading: the name is
// first opened with O_PATH, which opens nothing, and its type checked, so
// that a FIFO, socket or device is refused, naming it and its type,
// instead of blocking kiln or being read.
package regfile
