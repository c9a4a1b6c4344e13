package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// defaultCaps is Docker's default capability set less CAP_NET_RAW, as
// Podman's: steps run on the host's network by default, where raw and
// packet sockets would read and forge the host's traffic (loopback
// services included). Pings that use ICMP datagram sockets still work
// where net.ipv4.ping_group_range allows the group; busybox's ping, which
// only tries a raw socket, does not.
var defaultCaps = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER,
	unix.CAP_MKNOD, unix.CAP_SETGID, unix.CAP_SETUID,
	unix.CAP_SETFCAP, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE,
	unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
}

func lastCap() uintptr {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return uintptr(n)
		}
	}
	return unix.CAP_LAST_CAP
}

// dropPrivileges confines the calling OS thread, which must be locked and
// must exec right after (capabilities and credentials are per thread
// until execve): it shrinks the bounding set to defaultCaps (less
// CAP_MKNOD when dropMknod), sets the same permitted and effective sets
// with an empty inheritable set, switches to cred and sets no_new_privs.
func dropPrivileges(cred credential, dropMknod bool) error {
	keep := map[uintptr]bool{}
	for _, c := range defaultCaps {
		keep[c] = !(dropMknod && c == unix.CAP_MKNOD)
	}
	last := lastCap()
	var set [2]uint32
	for c := uintptr(0); c <= last; c++ {
		if keep[c] {
			set[c/32] |= 1 << (c % 32)
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: set[0], Permitted: set[0]},
		{Effective: set[1], Permitted: set[1]},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("setting capabilities: %w", err)
	}
	if err := setCredential(cred); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	// Last: the filter blocks calls made above (setns, unshare, …).
	return loadSeccomp()
}

// setCredential switches the calling thread to cred with raw system
// calls: the Go runtime's own wrappers change every thread, which is
// neither needed nor wanted right before an execve.
func setCredential(c credential) error {
	groups := make([]uint32, len(c.groups)+1) // never empty, for &groups[0]
	copy(groups, c.groups)
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.groups)), uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 && !(e == unix.EPERM && onlyGroup(c)) {
		// EPERM where setgroups is denied: a rootless kiln mapping its
		// user's ids alone, where no other group exists anyway.
		return fmt.Errorf("setting supplementary groups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(c.gid), uintptr(c.gid), uintptr(c.gid)); e != 0 {
		return fmt.Errorf("setting group %d: %w", c.gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(c.uid), uintptr(c.uid), uintptr(c.uid)); e != 0 {
		return fmt.Errorf("setting user %d: %w", c.uid, e)
	}
	return nil
}

// onlyGroup reports whether c asks for no supplementary group but its
// own group (or root's).
func onlyGroup(c credential) bool {
	for _, g := range c.groups {
		if g != c.gid && g != 0 {
			return false
		}
	}
	return true
}
