// Package cache provides kiln's build cache: an index from a step's cache
// key to the layer that running the step produced, kept beside the image
// store whose blobs hold the layers.
//
// A key ([ComputeKey]) is a sha256 over a canonical, length-prefixed
// encoding of everything the step's result depends on: the parent's key
// (the chain starts at [BaseKey] of the stage's base image), the step's
// definition (command, env, workdir, user, shell, network) and, for copy and
// template steps, the content digests of their inputs. Equal keys mean the
// step may be skipped and its recorded layer used instead.
//
// The layout under the store's root is:
//
//	cache/records/<xx>/<key>.json  one record per key (xx: the first two hex
//	                               digits), written to a temp file, synced and
//	                               renamed, so readers see it whole or not at all
//	cache/records/.tmp-<pid>-*     records being written; Open removes those
//	                               of processes that are gone
//	cache/locks/<key>.lock         flock(2)ed by [Cache.Lock] while a process
//	                               builds the step of that key
//	refs/cache/<key>               the store reference that keeps the record's
//	                               blob and unpacked layer from collection
//
// # Writing a record
//
// The record is written last: the layer's blob must already be in the store
// ([store.Store.WriteLayer]); Put then refreshes the blob's modification time
// (so a collection that began before the reference existed still spares it
// for store.GCGrace), writes the store reference, and only then writes the
// record. A crash leaves at worst a reference without a record, never a
// record without its blob.
//
// # Reading a record
//
// Get returns an error wrapping [ErrNotFound] when no record has the key,
// and an error wrapping [ErrCorrupt] when a record exists but cannot be used:
// it does not parse, names another key, or its blob is missing or has the
// wrong size. A caller (the build engine) should treat ErrCorrupt as a miss
// that deserves a warning: [Cache.Delete] the record and run the step again.
// The blob's bytes are verified lazily: reading the returned layer's
// Compressed or Uncompressed stream to the end fails, naming the digest, if
// the bytes do not hash to it. [Cache.Verify] checks a record eagerly.
//
// # Concurrency
//
// A Cache may be used from several goroutines, and several Caches (in one or
// more processes) may share a root. There is no global lock: [Cache.Lock]
// takes a lock per key, so that two builds needing the same step run it once
// (the second waits, then finds the record), while different steps proceed
// in parallel.
package cache
