package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// v1Controllers are the v1 controllers kiln puts groups in, in the order
// their hierarchies are visited.
var v1Controllers = []string{"pids", "memory", "cpu", "devices", "freezer"}

// v1Mounts reads mountinfo and returns, for each controller of v1Controllers
// that has a cgroup (v1) hierarchy mounted at or below under, its
// mountpoint. A co-mounted hierarchy ("cpu,cpuacct") maps each of its
// controllers to the same mountpoint. The first mount of a controller wins.
func v1Mounts(r io.Reader, under string) (map[string]string, error) {
	wanted := make(map[string]bool, len(v1Controllers))
	for _, c := range v1Controllers {
		wanted[c] = true
	}
	mounts := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// 32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:1 - cgroup cgroup rw,cpu
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			return nil, fmt.Errorf("parsing mountinfo line %q: no fstype and super options", sc.Text())
		}
		if fields[sep+1] != "cgroup" {
			continue
		}
		mp := filepath.Clean(unescapeMountinfo(fields[4]))
		if mp != under && !strings.HasPrefix(mp, under+"/") && under != "/" {
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			if wanted[opt] && mounts[opt] == "" {
				mounts[opt] = mp
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return mounts, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, \011, \012,
// \134) the kernel puts in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
