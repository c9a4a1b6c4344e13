package container

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/regfile"
)

// credential is who a process runs as.
type credential struct {
	uid, gid uint32
	groups   []uint32
}

// lookupUser resolves "uid[:gid]" or "name[:group]" against the
// container's /etc/passwd and /etc/group, as Docker does: a numeric uid
// needs no passwd entry, a name does. It also returns the home directory.
func lookupUser(spec string) (credential, string, error) {
	if spec == "" {
		spec = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	users, err := readColonFile("/etc/passwd") // a missing file is fine for numeric ids
	if err != nil {
		return credential{}, "", err
	}
	groups, err := readColonFile("/etc/group")
	if err != nil {
		return credential{}, "", err
	}

	var c credential
	home := "/"
	var name string
	if uid, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		c.uid = uint32(uid)
		for _, u := range users {
			if len(u) >= 6 && u[2] == userPart {
				name, home = u[0], u[5]
				if gid, err := strconv.ParseUint(u[3], 10, 32); err == nil {
					c.gid = uint32(gid)
				}
				break
			}
		}
	} else {
		found := false
		for _, u := range users {
			if len(u) >= 6 && u[0] == userPart {
				uid, err1 := strconv.ParseUint(u[2], 10, 32)
				gid, err2 := strconv.ParseUint(u[3], 10, 32)
				if err1 != nil || err2 != nil {
					return c, "", fmt.Errorf("user %q: malformed /etc/passwd entry", userPart)
				}
				c.uid, c.gid, name, home = uint32(uid), uint32(gid), u[0], u[5]
				found = true
				break
			}
		}
		if !found {
			return c, "", fmt.Errorf("unable to find user %s: no matching entries in the image's /etc/passwd", userPart)
		}
	}
	if hasGroup {
		if gid, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			c.gid = uint32(gid)
		} else {
			found := false
			for _, g := range groups {
				if len(g) >= 3 && g[0] == groupPart {
					gid, err := strconv.ParseUint(g[2], 10, 32)
					if err != nil {
						return c, "", fmt.Errorf("group %q: malformed /etc/group entry", groupPart)
					}
					c.gid, found = uint32(gid), true
					break
				}
			}
			if !found {
				return c, "", fmt.Errorf("unable to find group %s: no matching entries in the image's /etc/group", groupPart)
			}
		}
	} else if name != "" {
		// Supplementary groups: those that list the user as a member.
		for _, g := range groups {
			if len(g) < 4 {
				continue
			}
			for _, m := range strings.Split(g[3], ",") {
				if m == name {
					if gid, err := strconv.ParseUint(g[2], 10, 32); err == nil && uint32(gid) != c.gid {
						c.groups = append(c.groups, uint32(gid))
					}
				}
			}
		}
	}
	// As Docker (containerd's ensureAdditionalGids) and runc specs do,
	// the primary group is also a supplementary group.
	c.groups = append([]uint32{c.gid}, c.groups...)
	if home == "" {
		home = "/"
	}
	return c, home, nil
}

// readColonFile reads the container's file at path (after pivot_root)
// as colon-separated fields. A missing file is empty.
func readColonFile(path string) ([][]string, error) {
	// Inside the root, as if it were "/", and only a regular file: a
	// FIFO would block the init, a device is not to be opened.
	f, err := regfile.OpenInRoot("/", path)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the image's %s: %w", path, err)
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, s.Err()
}
