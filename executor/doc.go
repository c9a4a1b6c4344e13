// Package executor provides facilities for running a build: it walks the
// graph of package dag with bounded parallelism, drives each node through
// its life (package fsm), finds steps in the cache or runs them in
// containers (package engine's runtime and snapshotter), commits their
// layers to the store, runs the test branches, and assembles the image.
//
// A node starts when every node it depends on has ended well. Independent
// stages, and the test branches of a stage, so run at once, up to
// Options.Jobs. The first failure of a step cancels the build (unless
// Options.KeepGoing); a failing test lets the other tests finish, then
// fails the build.
//
// # Debugging
//
// When Options.Observer is also an [Inspector] (package executor/debugger's is),
// the executor asks it what to do before each step that makes a layer
// (once the step's cache key is known, before the cache is looked up,
// so cached steps stop too) and after it ends: continue, skip the step
// (its layer is absent), retry it, edit a run step's command, or abort
// the build. A [NodeView] shows the step, its env, workdir, user and
// cache key, its filesystem (Mounted, without a container; Run, in a
// throwaway container), its changes (Diff) and, after a failure, its
// exit code, output and snapshot, kept until After returns. Without an
// Inspector, none of this runs.
//
// # Size
//
// The package is above the ~1,500 lines kiln's packages keep to (about
// 3,700): the scheduler, a node's run (nodes.go), its mounts, the toolbox
// and the Inspector hooks (debug.go) share one build's state (the nodes,
// their snapshots, held cache locks), which splitting would export. What
// does not share it lives below: the build context (executor/buildctx)
// and what watches a run (executor/debugger, executor/progress,
// executor/history, executor/junit).
package executor
