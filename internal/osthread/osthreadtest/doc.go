// Package osthreadtest helps tests of code that must not leave the
// process's main thread changed (see package osthread): it runs a test's
// function on a goroutine that starts on the main thread.
package osthreadtest
