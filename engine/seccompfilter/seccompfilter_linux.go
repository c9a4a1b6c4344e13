package seccompfilter

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Blocked lists the system calls that fail with EPERM in build
// containers, after Docker's default profile: loading kernel code, BPF,
// the kernel keyring, mounting (also through the new mount API), swap,
// reboot and time, new namespaces (unshare, setns: a user namespace would
// hand a step back the capabilities it was denied), and a few obsolete or
// dangerous calls (open_by_handle_at was the "shocker" escape). Most of
// them are also denied by the capability set; the filter is a second
// wall.
func Blocked() []string {
	return []string{
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"create_module", "get_kernel_syms", "query_module",
		"bpf", "perf_event_open", "userfaultfd", "lookup_dcookie", "kcmp",
		"keyctl", "add_key", "request_key",
		"mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig",
		"fsmount", "fspick", "mount_setattr",
		"swapon", "swapoff", "reboot", "acct", "quotactl",
		"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
		"unshare", "setns",
		"open_by_handle_at", "name_to_handle_at",
		"iopl", "ioperm", "uselib", "_sysctl", "sysfs", "ustat", "vhangup", "nfsservctl",
		"syslog", "personality", "fanotify_init",
	}
}

// Compile returns the filter's BPF program for the running architecture,
// as seccomp.LoadFilter would load it: the calls of Blocked fail with
// EPERM, a clone of a new user namespace too, and clone3 with ENOSYS.
func Compile() ([]unix.SockFilter, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range Blocked() {
		if _, ok := info.SyscallNames[n]; ok { // not every call exists on every architecture
			names = append(names, n)
		}
	}
	groups := []seccomp.SyscallGroup{{Action: seccomp.ActionErrno, Names: names}}
	if _, ok := info.SyscallNames["clone"]; ok {
		// clone of a new user namespace needs no capability: refuse it.
		// (clone's flags are its first argument on the architectures
		// kiln builds for.)
		groups = append(groups, seccomp.SyscallGroup{
			Action: seccomp.ActionErrno,
			NamesWithCondtions: []seccomp.NameWithConditions{{
				Name:       "clone",
				Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.BitsSet, Value: unix.CLONE_NEWUSER}},
			}},
		})
	}
	if _, ok := info.SyscallNames["clone3"]; ok {
		// clone3's flags are behind a pointer, out of a filter's reach:
		// answer ENOSYS, as Docker does, and C libraries fall back to
		// clone, which is filtered above.
		groups = append(groups, seccomp.SyscallGroup{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}})
	}
	policy := seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: groups}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, err
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog, nil
}
