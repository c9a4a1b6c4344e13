package enginetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kiln-build/kiln/engine/binfmt"
)

// DebsDir is where the test setup (make test-deps, .ci/run) downloads the
// Debian packages of other architectures that fixtures unpack offline;
// $KILN_TEST_DEBS overrides it.
const DebsDir = "/var/cache/kiln-test"

// ForeignArch is the architecture the multi-platform tests build for
// beside the host's: arm64 on an amd64 machine, amd64 on an arm64 one.
func ForeignArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// BusyboxFor builds a busybox root filesystem of the architecture arch
// (GOARCH) in a new temp directory and returns it: the host's as Busybox
// does, another's from Debian's busybox-static:ARCH package that the test
// setup downloaded into DebsDir (apt-get download busybox-static:arm64),
// unpacked with dpkg-deb. It skips the test when the package is missing.
func BusyboxFor(t testing.TB, arch string) string {
	t.Helper()
	if arch == runtime.GOARCH {
		return Busybox(t)
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("skipping: busybox is not installed (apt-get install busybox-static)")
	}
	dir := os.Getenv("KILN_TEST_DEBS")
	if dir == "" {
		dir = DebsDir
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "busybox-static_*_"+arch+".deb"))
	if len(debs) == 0 {
		t.Skipf("skipping: no busybox-static_*_%s.deb in %s (make test-deps downloads it: dpkg --add-architecture %s && apt-get update && apt-get download busybox-static:%s)", arch, dir, arch, arch)
	}
	x := filepath.Join(t.TempDir(), "deb")
	if out, err := exec.Command("dpkg-deb", "-x", debs[len(debs)-1], x).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", debs[len(debs)-1], err, out)
	}
	root := filepath.Join(t.TempDir(), "busybox-"+arch)
	script := filepath.Join(RepoRoot(t), "scripts", "busybox-rootfs.sh")
	cmd := exec.Command(script, root)
	cmd.Env = append(os.Environ(), "BUSYBOX="+filepath.Join(x, "bin", "busybox"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the %s busybox rootfs: %v\n%s", arch, err, out)
	}
	return root
}

// RequireEmulation skips the test unless arch's programs run here:
// natively, or through qemu registered in binfmt_misc with the F flag,
// which it registers (as root) from qemu-user-static's definitions when
// it can.
func RequireEmulation(t testing.TB, arch string) {
	t.Helper()
	p := binfmt.DefaultPaths()
	if binfmt.Check(p, arch) == nil {
		return
	}
	if err := binfmt.Install(p, arch); err != nil {
		t.Skipf("skipping: %s programs cannot run here: %v", arch, err)
	}
}
