// Package rootless runs kiln as an ordinary user: the process re-executes
// itself into a user namespace of its own, where it is root over the
// user's subordinate ids (/etc/subuid, /etc/subgid), and a mount
// namespace whose mounts die with it. It also tells the rest of kiln
// whether it runs inside such a namespace, where overlayfs keeps its
// attributes under user.overlay.* and real devices cannot be made.
package rootless
