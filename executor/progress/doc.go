// Package progress provides facilities for showing a build as it runs:
// observers of package fsm that print a plain line per state change
// and the steps' output (for CI logs), or one JSON object per event (for
// tools: state, output and, with JSON.Result, a closing result event; the
// README documents the fields). Plain and JSON progress give each node's
// whole duration (fsm.Event.Elapsed), not only its last state's.
package progress
