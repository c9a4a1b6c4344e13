// Package executor provides facilities for running a build: it walks the
// graph of package dag with bounded parallelism, drives each node through
// its life (package lifecycle), finds steps in the cache or runs them in
// containers (package engine's runtime and snapshotter), commits their
// layers to the store, runs the test branches, and assembles the image.
//
// A node starts when every node it depends on has ended well. Independent
// stages, and the test branches of a stage, so run at once, up to
// Options.Jobs. The first failure of a step cancels the build (unless
// Options.KeepGoing); a failing test lets the other tests finish, then
// fails the build.
package executor
