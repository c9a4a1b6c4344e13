// Package enginetest provides a conformance suite for implementations of
// engine.Snapshotter, and the fixtures that kiln's engine tests share: a
// root check, a busybox root filesystem built from the busybox-static
// package, layer directories and a tree listing to compare filesystems.
package enginetest
