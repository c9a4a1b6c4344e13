// Package flock provides taking an exclusive flock(2) by polling, so that
// a wait on another kiln's lock ends when its context does: a blocking
// flock cannot be interrupted, and outlives a cancelled build in a thread
// of its own.
package flock
