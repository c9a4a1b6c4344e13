package cgroup

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deviceRule allows the accesses in access (of "rwm") to the character
// ('c') or block ('b') devices of a major and minor number (-1: any).
type deviceRule struct {
	typ          byte
	major, minor int64
	access       string
}

// deviceRules are what a container may do with devices, as in Docker's
// default, and no block device at all: everything else is denied.
var deviceRules = []deviceRule{
	{'c', -1, -1, "m"},    // mknod of character devices
	{'c', 1, 3, "rwm"},    // null
	{'c', 1, 5, "rwm"},    // zero
	{'c', 1, 7, "rwm"},    // full
	{'c', 1, 8, "rwm"},    // random
	{'c', 1, 9, "rwm"},    // urandom
	{'c', 5, 0, "rwm"},    // tty
	{'c', 5, 1, "rwm"},    // console
	{'c', 5, 2, "rwm"},    // ptmx
	{'c', 136, -1, "rwm"}, // pts
	{'c', 10, 200, "rwm"}, // net/tun
}

// String returns the rule as v1's devices.allow takes it: "c 1:3 rwm".
func (r deviceRule) String() string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), r.access)
}

// insn is one eBPF instruction, as struct bpf_insn.
type insn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high one
	off  int16
	imm  int32
}

// Instruction codes (BPF_CLASS | BPF_OP | BPF_SRC / BPF_SIZE).
const (
	opLoadWord = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W
	opAnd      = unix.BPF_ALU64 | unix.BPF_AND | unix.BPF_K
	opShiftR   = unix.BPF_ALU64 | unix.BPF_RSH | unix.BPF_K
	opMove     = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K
	opJumpNE   = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K
	opJumpSet  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opExit     = unix.BPF_JMP | unix.BPF_EXIT
)

// deviceProgram compiles rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program: it returns 1 (allow) for an access some rule allows, else 0.
// Its context is struct bpf_cgroup_dev_ctx: access_type (device type in
// the low 16 bits, accesses in the high ones), major, minor.
func deviceProgram(rules []deviceRule) []insn {
	const typ, acc, major, minor = 2, 3, 4, 5 // registers; r1 is the context
	prog := []insn{
		{code: opLoadWord, regs: typ | 1<<4, off: 0},
		{code: opAnd, regs: typ, imm: 0xffff},
		{code: opLoadWord, regs: acc | 1<<4, off: 0},
		{code: opShiftR, regs: acc, imm: 16},
		{code: opLoadWord, regs: major | 1<<4, off: 4},
		{code: opLoadWord, regs: minor | 1<<4, off: 8},
	}
	for _, r := range rules {
		// Each test jumps past the rule when it does not match.
		var tests []insn
		t := int32(unix.BPF_DEVCG_DEV_CHAR)
		if r.typ == 'b' {
			t = unix.BPF_DEVCG_DEV_BLOCK
		}
		tests = append(tests, insn{code: opJumpNE, regs: typ, imm: t})
		var allowed int32
		for _, a := range r.access {
			allowed |= map[rune]int32{'m': unix.BPF_DEVCG_ACC_MKNOD, 'r': unix.BPF_DEVCG_ACC_READ, 'w': unix.BPF_DEVCG_ACC_WRITE}[a]
		}
		if denied := ^allowed & 7; denied != 0 {
			tests = append(tests, insn{code: opJumpSet, regs: acc, imm: denied})
		}
		if r.major >= 0 {
			tests = append(tests, insn{code: opJumpNE, regs: major, imm: int32(r.major)})
		}
		if r.minor >= 0 {
			tests = append(tests, insn{code: opJumpNE, regs: minor, imm: int32(r.minor)})
		}
		n := len(tests) + 2 // the tests, then r0 = 1 and exit
		for i := range tests {
			tests[i].off = int16(n - i - 1)
		}
		prog = append(prog, tests...)
		prog = append(prog, insn{code: opMove, regs: 0, imm: 1}, insn{code: opExit})
	}
	return append(prog, insn{code: opMove, regs: 0, imm: 0}, insn{code: opExit})
}

// ptr is a __aligned_u64 of bpf_attr holding a pointer, kept a Go pointer
// so that what it points to stays alive and in place: one pointer on
// 64-bit machines, the pointer and a nil on 32-bit (little-endian) ones.
type ptr [8 / unsafe.Sizeof(uintptr(0))]unsafe.Pointer

// progLoadAttr is the BPF_PROG_LOAD part of union bpf_attr.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              ptr
	license            ptr
	logLevel           uint32
	logSize            uint32
	logBuf             ptr
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// progAttachAttr is the BPF_PROG_ATTACH part of union bpf_attr.
type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// loadDeviceProgram loads prog and returns its descriptor. When the
// kernel refuses it, it loads it again with the verifier's log, for the
// error.
func loadDeviceProgram(prog []insn) (int, error) {
	license := []byte("Apache-2.0\x00")
	attr := progLoadAttr{
		progType:           unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:            uint32(len(prog)),
		insns:              ptr{unsafe.Pointer(&prog[0])},
		license:            ptr{unsafe.Pointer(&license[0])},
		expectedAttachType: unix.BPF_CGROUP_DEVICE,
	}
	copy(attr.progName[:], "kiln_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == unix.EINVAL || err == unix.EACCES {
		log := make([]byte, 1<<16)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = ptr{unsafe.Pointer(&log[0])}
		if _, lerr := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); lerr != nil {
			err = fmt.Errorf("%w: %s", lerr, strings.TrimSpace(string(log[:clen(log)])))
		}
	}
	if err != nil {
		return -1, fmt.Errorf("loading the device program: %w", err)
	}
	return int(fd), nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// attachDeviceFilter loads the program of deviceRules and attaches it to
// the cgroup v2 directory dir: from then on the kernel checks every
// device access (open, mknod) of the group's processes with it, in
// addition to any v1 devices controller. Programs of parent groups still
// run (BPF_F_ALLOW_MULTI): an access must pass all of them. The group
// keeps the program until it is removed.
func attachDeviceFilter(dir string) error {
	prog, err := loadDeviceProgram(deviceProgram(deviceRules))
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attaching the device program: %w", err)
	}
	defer unix.Close(cg)
	attr := progAttachAttr{
		targetFd:    uint32(cg),
		attachBpfFd: uint32(prog),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return fmt.Errorf("attaching the device program to %s: %w", dir, err)
	}
	return nil
}
