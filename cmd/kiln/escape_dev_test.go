package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// loopDevice attaches a loop device to a new 1 MiB file holding marker at
// offset 512 and returns the device's number; it is detached when the
// test ends.
func loopDevice(t *testing.T, marker string) uint64 {
	t.Helper()
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("skipping: losetup is not installed (util-linux)")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	b := make([]byte, 1<<20)
	copy(b[512:], marker)
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("skipping: no loop device to attach: losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detaching %s: %v: %s", dev, err, out)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	return st.Rdev
}

// devProbe tries to read the marker through /disk and to write to it.
const devProbe = `if head -c 4096 /disk 2>/dev/null | grep -q "$1"; then echo "read the host's disk"; fi
if printf x 2>/dev/null | dd of=/disk bs=1 seek=4000 conv=notrunc 2>/dev/null; then echo "wrote the host's disk"; fi
echo probed`

// TestEscapeDeviceNode runs an image carrying a block device node for a
// host disk (a loop device attached to a file holding a marker): neither
// kiln run nor a build step can read or write it, with the cgroup v1
// devices controller in place and with it hidden, as on a cgroup v2 host
// (kiln then runs in a private mount namespace where
// /sys/fs/cgroup/devices is unmounted).
func TestEscapeDeviceNode(t *testing.T) {
	enginetest.RequireRoot(t)
	marker := "kiln-disk-marker-" + strings.Repeat("x", 8)
	rdev := loopDevice(t, marker)
	root := newRoot(t)
	rootfs := enginetest.Busybox(t)
	if err := unix.Mknod(filepath.Join(rootfs, "disk"), unix.S_IFBLK|0o666, int(rdev)); err != nil {
		t.Fatal(err)
	}
	mustKiln(t, root, "import", rootfs, "-t", "busybox", "--cmd", "/bin/sh")
	ctx := writeContext(t, map[string]string{
		"kiln.yml": "from: busybox\nsteps:\n  - run: |\n" + indent(strings.ReplaceAll(devProbe, `"$1"`, marker), "      ") + "\n",
	})

	hidden := []string{"unshare", "-m", "--propagation", "private", "sh", "-c", `umount /sys/fs/cgroup/devices && exec "$0" "$@"`}
	for _, mode := range []struct {
		name    string
		wrapper []string
	}{
		{"v1 devices controller", nil},
		{"devices controller hidden", hidden},
	} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.wrapper != nil {
				if _, err := os.Stat("/sys/fs/cgroup/devices/devices.list"); err != nil {
					t.Skip("skipping: no v1 devices controller to hide at /sys/fs/cgroup/devices")
				}
			}
			r := kilnProcess(t, root, mode.wrapper, nil, "run", "busybox", "--", "sh", "-c", devProbe, "sh", marker)
			if r.code != 0 || r.stdout != "probed\n" {
				t.Errorf("kiln run: exit %d, stdout %q (want \"probed\\n\"), stderr %s", r.code, r.stdout, r.stderr)
			}
			r = kilnProcess(t, root, mode.wrapper, nil, "build", "--no-cache", ctx)
			if r.code != 0 || strings.Contains(r.stderr, "host's disk") || !strings.Contains(r.stderr, "| probed") {
				t.Errorf("kiln build: exit %d; want 0, \"probed\" and no access to the disk\nstderr: %s", r.code, r.stderr)
			}
		})
	}
	// The node itself works: outside a container it reads the marker.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(rootfs, "disk"), &st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(rootfs, "disk"))
	if err != nil || !bytes.Contains(b[:4096], []byte(marker)) {
		t.Errorf("reading the node on the host: %v; want the marker", err)
	}
}
