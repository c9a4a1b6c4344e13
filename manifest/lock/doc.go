// Package lock provides facilities for kiln.lock, the file beside a
// manifest that pins, by digest, every base image reference and every
// registry module the manifest names: kiln lock writes it, kiln build
// --locked builds with exactly those digests, and kiln build warns when
// it is stale.
package lock
