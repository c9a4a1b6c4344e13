// Package dag provides the build graph: it compiles a build's IR
// (a *manifest.Build) into a validated, immutable directed acyclic graph
// of nodes, orders it for execution, and draws it as DOT, Mermaid or JSON.
//
// A stage FROM an image (or scratch) starts with a base node; every step
// is one node that builds on its parent (the previous step, the base
// node, or for a stage FROM another stage, that stage's last node); a
// copy from another stage also waits for that stage's last node. Tests
// are branches off the last node of their stage: they gate the build but
// nothing builds on them.
//
// Edges point from a dependency to its dependent, so a topological order
// is an execution order. Compile reports every problem of the input as
// an error (a *manifest.Error at the position the user wrote) and never
// panics; the graph library it uses does not leave the package.
package dag
