// Package owner provides facilities for naming the process that owns a
// piece of on-disk state (a container, a snapshot, a temp file), so that a
// later kiln can tell whether that process still runs and sweep what a
// crashed one left behind.
//
// A process is named by its PID and its start time (field 22 of
// /proc/PID/stat), so a reused PID is not mistaken for the owner.
package owner
