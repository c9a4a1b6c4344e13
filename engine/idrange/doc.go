// Package idrange allocates the subordinate id ranges on which kiln runs a
// root build's steps in user namespaces of their own (kiln build --userns
// auto): container ids 0–65535 map onto a range of host ids that no
// other running step or build holds, so that root in a step is not root
// on the host.
//
// The ranges come from the /etc/subuid and /etc/subgid entries of the
// name "kiln" (as Podman's --userns=auto takes them from "containers"),
// cut into slots of 65536 ids. Without such an entry kiln uses its
// default range, 1879048192–2147352575 (0x70000000–0x7FFDFFFF: 4094
// slots, in the part of the id space that systemd leaves unused), less
// any slot that another /etc/subuid or /etc/subgid entry overlaps.
//
// A slot is held by an exclusive flock on a file of its own in a lock
// directory shared by every kiln on the host (/run/kiln/userns), so that
// two steps never hold the same slot at once, whatever their --root; the
// kernel releases it when the holder exits, killed or not.
package idrange
