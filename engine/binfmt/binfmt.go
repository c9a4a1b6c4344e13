package binfmt

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths are where the kernel's binfmt_misc and the emulators'
// definitions are; [DefaultPaths] are the usual ones, tests give others.
type Paths struct {
	Misc string // the binfmt_misc file system: /proc/sys/fs/binfmt_misc
	Defs string // the definitions, one NAME.conf each: /usr/lib/binfmt.d
}

// DefaultPaths are the kernel's and Debian's.
func DefaultPaths() Paths {
	return Paths{Misc: "/proc/sys/fs/binfmt_misc", Defs: "/usr/lib/binfmt.d"}
}

// qemuNames are the qemu names of the GOARCH architectures kiln builds for.
var qemuNames = map[string]string{
	"amd64":    "x86_64",
	"arm64":    "aarch64",
	"arm":      "arm",
	"386":      "i386",
	"ppc64le":  "ppc64le",
	"s390x":    "s390x",
	"riscv64":  "riscv64",
	"mips64le": "mips64el",
}

// Native reports whether this machine's CPU runs arch's programs itself.
func Native(arch string) bool {
	return arch == runtime.GOARCH || (runtime.GOARCH == "amd64" && arch == "386") || (runtime.GOARCH == "arm64" && arch == "arm")
}

// MissingError says that arch's programs cannot run here, and what to do.
type MissingError struct {
	Arch   string // GOARCH
	Reason string // what is missing
	Qemu   string // the emulator's qemu name, "" when qemu has none
}

func (e *MissingError) Error() string {
	if e.Qemu == "" {
		return fmt.Sprintf("cannot run %s programs: %s, and qemu has no user-mode emulator kiln knows for it", e.Arch, e.Reason)
	}
	return fmt.Sprintf("cannot run %s programs on this %s machine: %s; install the emulator and register it with the fix-binary flag: "+
		"apt-get install qemu-user-static, then as root `kiln binfmt --install %s` (or: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; "+
		"cat /usr/lib/binfmt.d/qemu-%s.conf > /proc/sys/fs/binfmt_misc/register)", e.Arch, runtime.GOARCH, e.Reason, e.Arch, e.Qemu)
}

// Check returns nil when arch's programs run here: natively, or through
// an enabled binfmt_misc registration of its qemu emulator with the F
// flag. Otherwise it returns a *MissingError.
func Check(p Paths, arch string) error {
	if Native(arch) {
		return nil
	}
	q, ok := qemuNames[arch]
	if !ok {
		return &MissingError{Arch: arch, Reason: "no emulator"}
	}
	if _, err := os.Stat(filepath.Join(p.Misc, "register")); err != nil {
		return &MissingError{Arch: arch, Qemu: q, Reason: fmt.Sprintf("binfmt_misc is not mounted at %s", p.Misc)}
	}
	reg, err := readEntry(filepath.Join(p.Misc, "qemu-"+q))
	if errors.Is(err, os.ErrNotExist) {
		return &MissingError{Arch: arch, Qemu: q, Reason: "no binfmt_misc registration qemu-" + q}
	}
	if err != nil {
		return fmt.Errorf("reading the binfmt_misc registration of qemu-%s: %w", q, err)
	}
	switch {
	case !reg.enabled:
		return &MissingError{Arch: arch, Qemu: q, Reason: "the binfmt_misc registration qemu-" + q + " is disabled"}
	case !strings.Contains(reg.flags, "F"):
		return &MissingError{Arch: arch, Qemu: q, Reason: "the binfmt_misc registration qemu-" + q + " lacks the fix-binary flag F (its interpreter " + reg.interpreter + " is not in the build's containers)"}
	}
	return nil
}

// Registration is what Check read of a binfmt_misc entry.
type registration struct {
	enabled     bool
	interpreter string
	flags       string
}

func readEntry(path string) (registration, error) {
	f, err := os.Open(path)
	if err != nil {
		return registration{}, err
	}
	defer f.Close()
	var r registration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "enabled":
			r.enabled = true
		case strings.HasPrefix(line, "interpreter "):
			r.interpreter = strings.TrimPrefix(line, "interpreter ")
		case strings.HasPrefix(line, "flags:"):
			r.flags = strings.TrimSpace(strings.TrimPrefix(line, "flags:"))
		}
	}
	return r, sc.Err()
}

// Install registers arch's qemu emulator from its definition in p.Defs,
// with the F flag added, mounting binfmt_misc at p.Misc when it is not
// mounted. It needs root. An existing registration without F is removed
// first; an enabled one with F is left alone.
func Install(p Paths, arch string) error {
	if Check(p, arch) == nil {
		return nil
	}
	q, ok := qemuNames[arch]
	if !ok {
		return &MissingError{Arch: arch, Reason: "no emulator"}
	}
	def := filepath.Join(p.Defs, "qemu-"+q+".conf")
	data, err := os.ReadFile(def)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("registering qemu-%s: %s is missing: apt-get install qemu-user-static", q, def)
	}
	if err != nil {
		return fmt.Errorf("registering qemu-%s: %w", q, err)
	}
	line, err := withFixBinary(string(data))
	if err != nil {
		return fmt.Errorf("registering qemu-%s from %s: %w", q, def, err)
	}
	if _, err := os.Stat(filepath.Join(p.Misc, "register")); err != nil {
		if err := unix.Mount("binfmt_misc", p.Misc, "binfmt_misc", 0, ""); err != nil {
			return fmt.Errorf("mounting binfmt_misc at %s: %w", p.Misc, err)
		}
	}
	entry := filepath.Join(p.Misc, "qemu-"+q)
	if _, err := os.Stat(entry); err == nil {
		// Registered without F, or disabled: replace it.
		if err := os.WriteFile(entry, []byte("-1"), 0); err != nil {
			return fmt.Errorf("removing the registration qemu-%s: %w", q, err)
		}
	}
	if err := os.WriteFile(filepath.Join(p.Misc, "register"), []byte(line), 0); err != nil {
		return fmt.Errorf("registering qemu-%s: %w", q, err)
	}
	return Check(p, arch)
}

// withFixBinary returns the registration line of a binfmt.d file (its
// first line that is not a comment), with F among its flags:
// :name:type:offset:magic:mask:interpreter:flags.
func withFixBinary(conf string) (string, error) {
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") {
			continue
		}
		if len(l) < 2 {
			break
		}
		sep := l[:1]
		fields := strings.Split(l[1:], sep)
		if len(fields) != 7 {
			return "", fmt.Errorf("a registration has 7 fields, this has %d: %q", len(fields), l)
		}
		if !strings.Contains(fields[6], "F") {
			fields[6] += "F"
		}
		return sep + strings.Join(fields, sep), nil
	}
	return "", errors.New("no registration line")
}
