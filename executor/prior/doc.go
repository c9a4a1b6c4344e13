// Package prior keeps what an incremental copy needs of a copy step's
// previous result, and puts its unchanged files in place for the next.
//
// A copy step that runs again with the same parent, arguments and
// options, only its sources changed (the same Lineage), usually writes
// mostly the files it wrote last time. Its Record names the layer it made
// and where each regular file of its sources went. Before the next copy
// runs, Link hard-links from that layer's directory into the new
// snapshot's upper directory (before the overlay is mounted: a link
// cannot cross into an overlay) the files whose source still exists,
// with their parent directories copied; the copy (buildctx.Keep) then
// keeps those that are already what it would write, checked by mode,
// owner, size, time and content, and unlinks and rewrites the others,
// never writing through a linked inode. Stale tells whether a linked
// file was left that the copy did not keep or replace: then the guess was
// wrong and the copy is made again from nothing. The layer's tar is
// written from the upper directory as for any copy, so it is the same as
// a full copy's. Records live in the root's cache/prior, one file per
// lineage; one whose layer directory is gone is removed when another is
// written.
package prior
