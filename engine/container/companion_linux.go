package container

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
)

// CompanionName is the file name of the small init program (cmd/kiln-init)
// that make build puts next to kiln. It runs only Main: re-executing it
// as a container's init skips the runtime and package set-up of the whole
// CLI (about 2 ms of every container start).
const CompanionName = "kiln-init"

// buildStamp identifies the sources a binary was built from. make build
// sets it, through -ldflags -X, to the same hash of the sources in kiln
// and kiln-init; a plain go build leaves it empty.
var buildStamp string

// Companion returns the kiln-init next to the program exe, when it is
// safe to re-execute as this program's container init: a regular file,
// not writable by group or others, owned as exe is, and built from the
// same sources (the same stamped -ldflags). Otherwise it returns "" and
// containers re-execute exe itself. A companion from another build could
// set containers up differently from what this kiln expects, so a stale
// one is never used.
func Companion(exe string) string {
	self, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return companion(exe, self, buildStamp)
}

// companion is Companion for a program exe built as self, with stamp.
func companion(exe string, self *debug.BuildInfo, stamp string) string {
	want := ldflags(self)
	if stamp == "" || !strings.Contains(want, "buildStamp="+stamp) {
		return ""
	}
	exeInfo, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), CompanionName)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 || !sameOwner(fi, exeInfo) {
		return ""
	}
	other, err := buildinfo.ReadFile(p)
	if err != nil || ldflags(other) != want || other.GoVersion != self.GoVersion {
		return ""
	}
	return p
}

// ldflags returns the -X assignments of the -ldflags a binary was built
// with: its stamps. How it was linked is left out: kiln is linked by the
// C linker when built with cgo (make build), kiln-init never.
func ldflags(bi *debug.BuildInfo) string {
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" {
			continue
		}
		var xs []string
		f := strings.Fields(s.Value)
		for i := 0; i < len(f); i++ {
			switch {
			case f[i] == "-X" && i+1 < len(f):
				xs = append(xs, f[i+1])
				i++
			case strings.HasPrefix(f[i], "-X="):
				xs = append(xs, strings.TrimPrefix(f[i], "-X="))
			}
		}
		return strings.Join(xs, " ")
	}
	return ""
}

// sameOwner reports whether a and b have the same owning user.
func sameOwner(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Uid == sb.Uid
}
