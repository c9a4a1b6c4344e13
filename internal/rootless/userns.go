package rootless

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// inside caches Inside: a process never leaves its user namespace.
var inside = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return !isInitial(string(b))
})

// isInitial reports whether uid_map content m is the initial user
// namespace's: all of the 32-bit ids mapped onto themselves.
func isInitial(m string) bool {
	f := strings.Fields(m)
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}

// Inside reports whether the process runs in a user namespace other than
// the initial one (a rootless kiln, or kiln in a rootless container).
func Inside() bool { return inside() }

// OverlayXattrPrefix is the prefix of overlayfs's own extended attributes
// on its layer directories: trusted.overlay. for root, user.overlay. in a
// user namespace (overlayfs's userxattr option), where trusted.*
// attributes cannot be set.
func OverlayXattrPrefix() string {
	if Inside() {
		return "user.overlay."
	}
	return "trusted.overlay."
}

// OverlayOptions adapts the options data of an overlay mount to a user
// namespace: overlayfs's attributes under user.overlay. (userxattr),
// and, since redirects cannot be followed there, redirect_dir=nofollow
// for redirect_dir=off (neither creates one). As root, data is as given.
func OverlayOptions(data string) string { return overlayOptions(data, Inside()) }

func overlayOptions(data string, inside bool) string {
	if !inside {
		return data
	}
	var out []string
	for o := range strings.SplitSeq(data, ",") {
		switch o {
		case "userxattr", "":
			continue
		case "redirect_dir=off":
			o = "redirect_dir=nofollow"
		}
		out = append(out, o)
	}
	return strings.Join(append(out, "userxattr"), ",")
}

// GIDMapped reports whether group id gid exists in the process's user
// namespace (its gid_map maps it), as it always does outside one.
func GIDMapped(gid int) bool {
	b, err := os.ReadFile("/proc/self/gid_map")
	return err != nil || mapped(string(b), gid)
}

// mapped reports whether the id map m (uid_map's form: inside, outside,
// count a line) maps id.
func mapped(m string, id int) bool {
	for line := range strings.Lines(m) {
		var in, out, n int
		if _, err := fmt.Sscan(line, &in, &out, &n); err == nil && id >= in && id-in < n {
			return true
		}
	}
	return false
}
