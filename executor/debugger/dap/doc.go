// Package dap provides a Debug Adapter Protocol server for kiln builds,
// so that an editor (VS Code, Neovim's nvim-dap) can set breakpoints on
// the steps of an app.yml or a Dockerfile, see where a build stopped and
// with what environment, step through it, and open a terminal in a
// step's container.
//
// The server is an executor.Inspector, like package executor/debugger's prompt,
// driven by DAP requests instead of typed commands. Each node of the
// graph that is under way is a thread. One stop at a time: while a step
// is stopped, every other node waits before its next step (a container
// that already runs ends its step first); continue and next let every
// branch run on, and next stops again before a step that builds on the
// stopped one.
//
// # Requests
//
// initialize, launch, setBreakpoints, setExceptionBreakpoints (the
// "failed" filter), configurationDone, threads, stackTrace, scopes,
// variables, continue, next, pause (stop before the next step that
// starts), restartFrame (run a failed step again), evaluate (a shell
// command run on the stopped step's filesystem, or "terminal" to open a
// shell there through the client's runInTerminal), exceptionInfo,
// disconnect and terminate. A failed step stops with reason "exception".
//
// A launch's relative paths are relative to its "cwd", else to the
// manifest's directory, never to the adapter's working directory.
// Breakpoints are verified on the steps the build can stop at
// (executor.Stops), frames and output carry 1-based lines and columns,
// every thread that started exits, and a build the session stops
// (disconnect, terminate) ends with Options.Status's code, quietly.
package dap
