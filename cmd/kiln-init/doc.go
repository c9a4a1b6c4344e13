// Command kiln-init is the init of kiln's containers and their exec
// helper, and nothing else: make build puts it next to kiln, which
// re-executes it (see container.Companion) instead of its own, much
// larger, binary. It links only engine/container, so that its start-up
// pays for the Go runtime and few packages' initialisation.
package main
