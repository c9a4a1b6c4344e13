package snapshot

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// ProbeRecord is the file, in the snapshot directory, where Auto
// remembers that overlayfs mounts there: a probe mounts and unmounts an
// overlay and makes and removes four directories, on every kiln command
// that runs a container. It is trusted for as long as the boot and the
// directory's file system are those it names; a reboot (a new kernel,
// other modules) or a move to another file system probes again.
const ProbeRecord = ".overlay-probe"

// probeKey says where and when a probe holds: the boot's id and the
// device of dir's file system.
func probeKey(dir string) ([]byte, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "boot %s\ndev %d\n", bytes.TrimSpace(boot), st.Dev), nil
}

// probeRemembered reports whether a probe of dir succeeded in this boot
// on the file system dir is on now.
func probeRemembered(dir string) bool {
	key, err := probeKey(dir)
	if err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, ProbeRecord))
	return err == nil && bytes.Equal(b, key)
}

// rememberProbe records that overlayfs mounts on dir's file system, best
// effort: without a record, the next command probes again.
func rememberProbe(dir string) {
	key, err := probeKey(dir)
	if err != nil {
		return
	}
	_ = atomicfile.Write(filepath.Join(dir, ProbeRecord), key, 0o600, func() (*os.File, error) {
		// Named as a probe's directory, so that Sweep removes it if
		// this process dies before renaming it.
		return os.CreateTemp(dir, probePrefix+fmt.Sprint(os.Getpid())+"-*")
	})
}
