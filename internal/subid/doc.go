// Package subid reads subordinate id files, /etc/subuid and /etc/subgid:
// "name-or-id:start:count" a line, the ranges of host ids a user (or
// kiln's own --userns auto entry) may map into a user namespace.
package subid
