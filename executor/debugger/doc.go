// Package debugger provides facilities for stepping through a kiln build
// like a program: an executor.Inspector that stops before steps (on
// entry, at breakpoints, after `next`) and after failures, and a prompt
// that reads commands line by line: list, break, next, continue, skip,
// retry, edit, quit, shell, commit, diff, cat, ls, env, log, cache and
// graph.
//
// The debugger observes the build through the executor's Observer, as
// progress output does: it forwards every event and every output to the
// Observer it wraps. One prompt is shown at a time. While it is open no
// other step starts (a step whose container runs ends its step, then
// waits), and the prompt names the nodes still running. When the user
// goes on, the stopped branch runs alone until it stops again or ends;
// continue --all lets every branch run on.
//
// Without a prompt (Options.Prompt false, as `kiln build --debug-on-fail`
// with no terminal), a failing step's output and changes are printed,
// and its filesystem is kept through Options.Keep.
package debugger
