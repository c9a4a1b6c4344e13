// Package progress provides facilities for showing a build as it runs:
// observers of package lifecycle that print a plain line per state change
// and the steps' output (for CI logs), or one JSON object per event (for
// tools).
package progress
