// Package toolbox provides what kiln mounts under /.kiln in every build
// and test container: kiln's own static binary at /.kiln/bin/kiln (a
// multi-call helper: render, wait-for, checksum), the build's template
// values at /.kiln/values.json, and each toolbox: entry of the stage,
// read-only, at /.kiln/toolbox/NAME.
//
// None of it is ever part of a layer: /.kiln is a tmpfs of the
// container's own, so whatever a step writes under it goes with the
// container, and the mountpoint /.kiln itself is a stub the container
// runtime removes from the writable layer. Nor is it part of a cache
// key's file inputs: tools are outside the cache, as BuildKit users
// expect of their frontends' helpers; a step whose output depends on a
// tool's content must copy: the tool instead.
package toolbox
