// Package buildctx provides the build context: the directory that copy and
// template steps read from, with its ignore rules, and the copying of files
// from it (or from another stage's filesystem) into a container's root
// filesystem with Docker COPY semantics.
//
// # Paths
//
// A copy source is a path relative to the context, possibly with
// filepath.Match wildcards in any component ("*.txt", "src/*/main.go").
// Symbolic links on the way to a source, and a source that is itself a link,
// are followed, but only within the context: a source that leads outside it
// (an absolute path, "../", or a link pointing out) is an error. Inside a
// copied directory, links are copied as links and never followed.
//
// A destination is a path inside a root filesystem. It is resolved the way
// the container would see it: absolute link targets and ".." are taken
// relative to the root, so nothing written ever lands outside the root
// (the semantics of filepath-securejoin).
//
// # Ignore rules
//
// The context's .kilnignore, or if there is none its .dockerignore, lists
// patterns with the semantics of github.com/moby/patternmatcher (as Docker
// uses them, "!" exceptions included). Ignored files are invisible: they are
// never matched, walked, digested or copied, and naming one is the same
// error as naming a missing file. The ignore file is read only if it is a
// regular file inside the context (a link to one inside works); a FIFO,
// socket or link leading out fails Open, naming it.
//
// # What is copied
//
// Regular files, directories and symbolic links, with their mode bits
// (permissions, setuid, setgid, sticky) and modification times; sockets,
// FIFOs and devices met in a copied directory or matched by a wildcard
// are skipped, never opened (with a warning to WithWarn's function, once
// per file), as BuildKit's copy skips pipes and sockets; one named as a
// source is an error saying what it is; unreadable files are an error
// naming them; hard links are copied as separate files;
// owners come from CopyOptions, never from the source; extended attributes
// are not copied.
//
// # Size
//
// The package is slightly above the ~1,500 lines kiln's packages keep to
// (about 1,650): ignore rules, digests and copies all go through the one
// resolution of a path inside the context (resolve.go, walk.go), the
// boundary against hostile contexts, which must stay one implementation.
package buildctx
