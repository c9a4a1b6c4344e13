// Package fsm provides facilities for following the life of a
// build graph's nodes: each node is a finite-state machine (looplab/fsm,
// kept inside this package, where it is imported as looplab so that the
// two packages read apart) whose every transition is reported to an
// [Observer]. Progress output, JSON events and the debugger all observe
// builds through that one interface.
//
// A step's life:
//
//	pending → checking-cache → cached
//	                         → creating → running → committing → done
//
// A test's life ends running → passed (or failed). Any state can go to
// failed or cancelled; a debugger may take a failed node back to
// checking-cache to run it again. Illegal transitions are errors.
package fsm
