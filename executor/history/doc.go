// Package history provides facilities for keeping build records: what
// each kiln build was asked (manifest, values), what every node did
// (state, duration) and what its cache key covered, so that later
// commands can list builds, draw the last one and explain cache misses.
package history
