// Command kiln is a daemonless, graph-driven container image builder.
//
// main.go holds the entry point and the flags every command shares;
// each other file holds one command (build.go, run.go, cache.go, …) or
// one part of one (build_check.go, build_inputs.go).
//
// # Size
//
// The package is above the ~1,500 lines kiln's packages keep to (about
// 4,700): it is the main package of the CLI, one file per command, each
// a thin layer of flags and output over the packages below it; what a
// command does that another could use lives in those packages.
package main
