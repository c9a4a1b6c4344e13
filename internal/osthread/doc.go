// Package osthread runs code on an OS thread of its own, for code that
// changes its thread (enters a namespace, unshares one) and must leave no
// trace on the rest of the process.
//
// A goroutine locked to its thread (runtime.LockOSThread) that ends
// without unlocking takes its thread with it, and whatever was done to
// the thread goes away: the usual way to confine such work. The one
// exception is the process's main thread, which Go's scheduler gives any
// goroutine when it is free but never ends: it parks it, in the state the
// goroutine left, for the rest of the process, where any goroutine may
// later run in that namespace, and /proc/self (which is the main thread)
// shows it. [Own] never runs its function on the main thread.
package osthread
