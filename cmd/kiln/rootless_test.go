package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	godap "github.com/google/go-dap"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/enginetest"
	imgregistry "github.com/kiln-build/kiln/image/registry"
)

// The rootless suite runs a kiln binary as an unprivileged user made for
// it, with a subordinate id range, and compares what it builds with the
// same build made as root.
const (
	rootlessUser  = "kilntest"
	rootlessRange = "1879048192-1879113727" // 65536 ids far from useradd's
	rootlessEpoch = "1700000000"
)

// rootlessEnv is the suite's fixture: the user, a kiln binary it can run,
// and a directory (0755) holding the user's home and the inputs.
type rootlessEnv struct {
	uid, gid int
	dir      string // 0755, root's: bin, inputs
	bin      string
	home     string // the user's, fresh: its kiln root is ~/.local/share/kiln
	run      string // the user's XDG_RUNTIME_DIR, fresh: the holder file is in run/kiln
	conf     string // registries.conf the user can read
}

// ensureUser creates the suite's user with subordinate id ranges, each
// only when missing.
func ensureUser(t *testing.T) (uid, gid int) {
	t.Helper()
	if _, err := user.Lookup(rootlessUser); err != nil {
		// No range of useradd's choosing: the fixed one below.
		if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", rootlessUser).CombinedOutput(); err != nil {
			t.Skipf("skipping: cannot create user %s: %v: %s", rootlessUser, err, out)
		}
	}
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ file, flag string }{{"/etc/subuid", "--add-subuids"}, {"/etc/subgid", "--add-subgids"}} {
		b, err := os.ReadFile(f.file)
		if errors.Is(err, os.ErrNotExist) {
			err = os.WriteFile(f.file, nil, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains("\n"+string(b), "\n"+rootlessUser+":") {
			continue
		}
		if out, err := exec.Command("usermod", f.flag, rootlessRange, rootlessUser).CombinedOutput(); err != nil {
			t.Fatalf("usermod %s: %v: %s", f.flag, err, out)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

func setupRootless(t *testing.T) *rootlessEnv {
	t.Helper()
	enginetest.RequireRoot(t)
	for _, tool := range []string{"newuidmap", "newgidmap", "setpriv", "useradd", "usermod"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed (Debian: uidmap, util-linux, passwd)", tool)
		}
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Skip("skipping: user namespaces are disabled (/proc/sys/user/max_user_namespaces)")
	}
	r := &rootlessEnv{}
	r.uid, r.gid = ensureUser(t)
	dir, err := os.MkdirTemp("", "kiln-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.dir, r.bin = dir, filepath.Join(dir, "kiln")
	// As released, with the constructor that joins the user's namespace
	// holder: CI installs gcc and libc6-dev (the Makefile's TEST_PACKAGES).
	if !staticCC() {
		t.Fatal("no C compiler linking static programs (Debian: gcc, libc6-dev): kiln is released with cgo")
	}
	releaseKiln(t, r.bin, true)
	r.home = r.userDir(t, "home")
	r.run = r.userDir(t, "run")
	t.Cleanup(func() { r.stopHolder(t) })
	r.conf = filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(r.conf, []byte(offlineConf), 0o644); err != nil {
		t.Fatal(err)
	}
	// User namespaces may be forbidden (a container, an LSM): then skip.
	if res := r.kiln(t, nil, "version"); res.code != 0 {
		if strings.Contains(res.stderr, "operation not permitted") {
			t.Skipf("skipping: an unprivileged user cannot make a user namespace here: %s", res.stderr)
		}
		t.Fatalf("kiln version as %s: exit %d: %s", rootlessUser, res.code, res.stderr)
	}
	return r
}

// holderFile is the user's holder file (internal/rootless/nsjoin).
func (r *rootlessEnv) holderFile() string { return filepath.Join(r.run, "kiln", "userns") }

// liveHolder returns the pid the holder file at path names when that
// process lives in a user namespace with the inode the file records.
func liveHolder(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var pid int
	var ino uint64
	if _, err := fmt.Sscan(string(b), &pid, &ino); err != nil || pid <= 0 {
		return 0, fmt.Errorf("holder file %q: not \"PID INODE\" (%v)", b, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &st); err != nil || st.Ino != ino {
		return 0, fmt.Errorf("holder file %q names no live holder (%v)", b, err)
	}
	return pid, nil
}

// holder returns the pid of the holder the user's holder file names,
// failing unless it is a live process in a user namespace with the inode
// the file records.
func (r *rootlessEnv) holder(t *testing.T) int {
	t.Helper()
	pid, err := liveHolder(r.holderFile())
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// stopHolder ends the user's holder, when there is one: kiln started it
// for the suite's commands.
func (r *rootlessEnv) stopHolder(*testing.T) { stopHolderAt(r.holderFile()) }

// stopHolderAt ends the holder the holder file at path names, when it
// lives with the user namespace the file records.
func stopHolderAt(path string) {
	if pid, err := liveHolder(path); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// holderArg0 is the holder's name in ps (internal/rootless).
const holderArg0 = "kiln-userns"

// setEnv sets variable key of cmd, a command of r.command, to value.
func setEnv(cmd *exec.Cmd, key, value string) {
	for i, a := range cmd.Args {
		if strings.HasPrefix(a, key+"=") {
			cmd.Args[i] = key + "=" + value
			return
		}
	}
	panic("setEnv: no " + key + " in the command")
}

// userDir makes a directory of the user's in r.dir.
func (r *rootlessEnv) userDir(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, r.uid, r.gid); err != nil {
		t.Fatal(err)
	}
	return p
}

// command returns kiln args run as the user, with only its own
// environment (HOME, PATH) and SOURCE_DATE_EPOCH.
func (r *rootlessEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command("setpriv", append([]string{
		"--reuid", strconv.Itoa(r.uid), "--regid", strconv.Itoa(r.gid), "--init-groups", "--",
		"env", "-i", "HOME=" + r.home, "XDG_RUNTIME_DIR=" + r.run, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"SOURCE_DATE_EPOCH=" + rootlessEpoch, imgregistry.ConfEnv + "=" + r.conf, r.bin}, args...)...)
	cmd.Dir = r.dir
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// kiln runs kiln args as the user.
func (r *rootlessEnv) kiln(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := r.command(args...)
	cmd.Stdin = stdin
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(4 * commandTimeout):
		cmd.Process.Kill()
		err = <-done
		t.Errorf("kiln %s as %s did not end", strings.Join(args, " "), rootlessUser)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r *rootlessEnv) mustKiln(t *testing.T, args ...string) result {
	t.Helper()
	res := r.kiln(t, nil, args...)
	if res.code != 0 {
		t.Fatalf("kiln %s as %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), rootlessUser, res.code, res.stdout, res.stderr)
	}
	return res
}

// root is the user's kiln root.
func (r *rootlessEnv) root() string { return filepath.Join(r.home, ".local", "share", "kiln") }

// multiUIDBase writes, as root, a busybox root filesystem tarball whose
// files belong to several users, with a setuid file, a file with file
// capabilities, a file and a directory the builds delete.
func (r *rootlessEnv) multiUIDBase(t *testing.T) string {
	t.Helper()
	// cap_net_bind_service+ep, as setcap writes it (VFS_CAP_REVISION_2).
	capv2 := string([]byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	return r.baseTar(t, "base.tar", []tarEntry{
		{tar.Header{Name: "home/app/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000}, ""},
		{tar.Header{Name: "home/app/notes", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000}, "mine\n"},
		{tar.Header{Name: "var/nobody/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 65534, Gid: 65534}, ""},
		{tar.Header{Name: "var/nobody/file", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 65534, Gid: 65534}, "nobody\n"},
		{tar.Header{Name: "srv/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 33, Gid: 33}, ""},
		{tar.Header{Name: "srv/www", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 33, Gid: 4}, "www\n"},
		{tar.Header{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "usr/bin/setuid", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0}, "#!/bin/sh\n"},
		{tar.Header{Name: "usr/bin/capped", Typeflag: tar.TypeReg, Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capv2, "SCHILY.xattr.user.note": "kept"}}, "#!/bin/sh\n"},
		{tar.Header{Name: "etc/removeme", Typeflag: tar.TypeReg, Mode: 0o644}, "x\n"},
		{tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "opq/a", Typeflag: tar.TypeReg, Mode: 0o644}, "a\n"},
	})
}

// tarEntry is an entry baseTar adds to busybox's.
type tarEntry struct {
	h    tar.Header
	data string
}

// baseTar writes, as root, a tarball (readable by all) of a busybox root
// filesystem, every file root's, with extra entries after it.
func (r *rootlessEnv) baseTar(t *testing.T, name string, extra []tarEntry) string {
	t.Helper()
	src := enginetest.Busybox(t)
	file := filepath.Join(r.dir, name)
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = rel, 0, 0, "", ""
		h.ModTime = time.Unix(1, 0)
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range extra {
		h := e.h
		h.Size, h.ModTime, h.Format = int64(len(e.data)), time.Unix(1, 0), tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// context writes files (flat) into a context directory the user can read.
func (r *rootlessEnv) context(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(r.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, files)
	return dir
}

// layerEntries lists every entry of every layer of img: name, type,
// owner, mode, link, size, content digest and extended attributes.
func layerEntries(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				t.Fatal(err)
			}
			var xattrs []string
			for k, v := range h.PAXRecords {
				if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
					xattrs = append(xattrs, name+"="+hex.EncodeToString([]byte(v)))
				}
			}
			slices.Sort(xattrs)
			out = append(out, fmt.Sprintf("%d %s type=%c %d:%d %#o link=%q size=%d sha256=%.12s xattrs=%v",
				i, h.Name, h.Typeflag, h.Uid, h.Gid, h.Mode, h.Linkname, h.Size, hex.EncodeToString(sum.Sum(nil)), xattrs))
		}
		rc.Close()
	}
	return out
}

// compareWithRoot exports the user's image tag and root's (in rootRoot),
// and fails on any difference of their layers' entries or digests.
func (r *rootlessEnv) compareWithRoot(t *testing.T, rootRoot, tag string) []string {
	t.Helper()
	out := r.userDir(t, "oci-"+tag)
	r.mustKiln(t, "push", tag, "oci-layout:"+out+":latest")
	userImg := layoutImage(t, out)
	rootImg := kilnImage(t, rootRoot, tag, filepath.Join(t.TempDir(), "oci"))
	want, got := layerEntries(t, rootImg), layerEntries(t, userImg)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s: the layers differ (-root +rootless):\n%s", tag, d)
	}
	rd, _ := rootImg.Digest()
	ud, _ := userImg.Digest()
	if rd != ud {
		t.Errorf("%s: rootless digest %s, root's %s", tag, ud, rd)
	}
	return got
}

// TestRootless builds, tests, debugs, pushes and pulls as an ordinary
// user, and compares each image with the same build made as root.
func TestRootless(t *testing.T) {
	r := setupRootless(t)
	t.Setenv("SOURCE_DATE_EPOCH", rootlessEpoch)
	base := r.multiUIDBase(t)
	rootRoot := newRoot(t)

	// The base: a tarball of files of several users, imported by both.
	ud := strings.TrimSpace(r.mustKiln(t, "import", base, "-t", "busybox", "--cmd", "/bin/sh").stdout)
	rd := strings.TrimSpace(mustKiln(t, rootRoot, "import", base, "-t", "busybox", "--cmd", "/bin/sh").stdout)
	if ud != rd || !strings.HasPrefix(ud, "sha256:") {
		t.Fatalf("import: rootless %q, root %q", ud, rd)
	}

	// examples/hello, where the user can read it.
	src, err := filepath.Abs("../../examples/hello")
	if err != nil {
		t.Fatal(err)
	}
	hello := filepath.Join(r.dir, "hello")
	if out, err := exec.Command("cp", "-r", src, hello).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", hello).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}

	t.Run("print-only-outside", func(t *testing.T) {
		// Commands that only print run as the user, without the user
		// namespace: they work where newuidmap cannot be found, as no
		// command that needs the namespace does.
		// No holder (a fresh runtime directory): a command that needs
		// the namespace makes one.
		fresh := r.userDir(t, "run-fresh")
		noTools := func(args ...string) *exec.Cmd {
			cmd := r.command(args...)
			setEnv(cmd, "PATH", "/nonexistent")
			setEnv(cmd, "XDG_RUNTIME_DIR", fresh)
			return cmd
		}
		for _, args := range [][]string{{"version"}, {"help", "build"}, {"--help"}} {
			out, err := noTools(args...).CombinedOutput()
			if err != nil {
				t.Errorf("kiln %s without newuidmap: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		out, err := noTools("images").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "newuidmap is not installed") {
			t.Errorf("kiln images without newuidmap: %v: %s, want the namespace's error", err, out)
		}
	})

	t.Run("holder", func(t *testing.T) {
		// The commands before made one holder; it is a sleeping process
		// of the user's in a user namespace of its own, in a session of
		// its own, in /, holding nothing of kiln's.
		pid := r.holder(t)
		proc := func(f string) string {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if !strings.Contains(proc("status"), fmt.Sprintf("\nUid:\t%d\t", r.uid)) {
			t.Errorf("holder %d is not the user's:\n%s", pid, proc("status"))
		}
		if sid, err := unix.Getsid(pid); err != nil || sid != pid {
			t.Errorf("holder %d: session %d (%v), want its own", pid, sid, err)
		}
		if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != "/" {
			t.Errorf("holder %d works in %q, want /", pid, cwd)
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l != os.DevNull {
				t.Errorf("holder %d holds fd %s: %s", pid, fd.Name(), l)
			}
		}
		if m := proc("uid_map"); !strings.Contains(m, strconv.Itoa(r.uid)) || !strings.Contains(m, strings.Split(rootlessRange, "-")[0]) {
			t.Errorf("holder %d's uid map:\n%s", pid, m)
		}
		holderNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))

		// A command joins it without newuidmap (none on its PATH), its
		// containers in the holder's user namespace.
		cmd := r.command("run", "busybox", "readlink", "/proc/self/ns/user")
		setEnv(cmd, "PATH", "/nonexistent")
		if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != holderNS {
			t.Errorf("kiln run without newuidmap: %v: %q, want the holder's namespace %s", err, out, holderNS)
		}

		// Files that name no holder of the user's are never joined: a new
		// holder is made, and the command works.
		sleeper := exec.Command("setpriv", "--reuid", strconv.Itoa(r.uid), "--regid", strconv.Itoa(r.gid), "--init-groups", "--", "sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
		initNS := func(p int) uint64 {
			var st syscall.Stat_t
			if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/user", p), &st); err != nil {
				t.Fatal(err)
			}
			return st.Ino
		}
		for _, c := range []struct{ name, content string }{
			{"a dead process", "999999999 4026531837\n"},
			{"garbage", "not a holder\n"},
			{"root's process (this test), in the initial namespace", fmt.Sprintf("%d %d\n", os.Getpid(), initNS(os.Getpid()))},
			{"a process of the user's in the initial namespace", fmt.Sprintf("%d %d\n", sleeper.Process.Pid, initNS(sleeper.Process.Pid))},
		} {
			before := r.holder(t)
			if err := os.WriteFile(r.holderFile(), []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			res := r.kiln(t, nil, "run", "busybox", "id", "-u")
			if res.code != 0 || res.stdout != "0\n" {
				t.Errorf("holder file naming %s: exit %d, %q %q", c.name, res.code, res.stdout, res.stderr)
			}
			if after := r.holder(t); after == before || after == sleeper.Process.Pid || after == os.Getpid() {
				t.Errorf("holder file naming %s: holder %d after, %d before", c.name, after, before)
			}
			syscall.Kill(before, syscall.SIGKILL)
		}

		// First commands started at once make one holder (a lock beside
		// the holder file), which all of them join.
		together := r.userDir(t, "run-together")
		holders := func() map[int]bool {
			out := map[int]bool{}
			for _, pid := range processesWith(holderArg0) {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); strings.Contains(string(b), fmt.Sprintf("\nUid:\t%d\t", r.uid)) {
					out[pid] = true
				}
			}
			return out
		}
		before := holders()
		cmds := make([]*exec.Cmd, 4)
		for i := range cmds {
			cmds[i] = r.command("images")
			setEnv(cmds[i], "XDG_RUNTIME_DIR", together)
			if err := cmds[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Errorf("kiln images started with three others: %v", err)
			}
		}
		defer stopHolderAt(filepath.Join(together, "kiln", "userns"))
		var made []int
		for pid := range holders() {
			if !before[pid] {
				made = append(made, pid)
			}
		}
		if len(made) != 1 {
			t.Errorf("four first commands at once made holders %v, want one", made)
			for _, pid := range made {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}

		// A runtime directory others may write is not trusted: the command
		// makes a namespace of its own, and says so.
		dir := filepath.Dir(r.holderFile())
		if err := os.Chmod(dir, 0o770); err != nil {
			t.Fatal(err)
		}
		res := r.kiln(t, nil, "run", "busybox", "id", "-u")
		os.Chmod(dir, 0o700)
		if res.code != 0 || res.stdout != "0\n" || !strings.Contains(res.stderr, "that only you may write: this command makes a user namespace of its own") {
			t.Errorf("a runtime directory others may write: exit %d, %q %q", res.code, res.stdout, res.stderr)
		}

		// Without XDG_RUNTIME_DIR the holder file is in /tmp/kiln-run-UID,
		// which kiln makes 0700; one that another user made first is
		// never used.
		tmpRun := fmt.Sprintf("/tmp/kiln-run-%d", r.uid)
		noXDG := func() *exec.Cmd {
			cmd := r.command("run", "busybox", "id", "-u")
			i := slices.IndexFunc(cmd.Args, func(a string) bool { return strings.HasPrefix(a, "XDG_RUNTIME_DIR=") })
			cmd.Args = slices.Delete(cmd.Args, i, i+1)
			return cmd
		}
		stopTmpHolder := func() {
			stopHolderAt(filepath.Join(tmpRun, "userns"))
			os.RemoveAll(tmpRun)
		}
		stopTmpHolder()
		defer stopTmpHolder()
		if out, err := noXDG().Output(); err != nil || string(out) != "0\n" {
			t.Errorf("kiln without XDG_RUNTIME_DIR: %v: %q", err, out)
		}
		if fi, err := os.Lstat(tmpRun); err != nil || fi.Mode() != os.ModeDir|0o700 || fi.Sys().(*syscall.Stat_t).Uid != uint32(r.uid) {
			t.Errorf("%s: %v, %v: want a directory of the user's, 0700", tmpRun, fi.Mode(), err)
		}
		if _, err := os.Stat(filepath.Join(tmpRun, "userns")); err != nil {
			t.Errorf("no holder file in %s: %v", tmpRun, err)
		}
		stopTmpHolder()
		if err := os.Mkdir(tmpRun, 0o755); err != nil { // root's: another user's
			t.Fatal(err)
		}
		cmd = noXDG()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if out, err := cmd.Output(); err != nil || string(out) != "0\n" || !strings.Contains(stderr.String(), "is not a directory of yours that only you may write") {
			t.Errorf("kiln with %s another user's: %v: %q %q", tmpRun, err, out, stderr.String())
		}
		if ents, _ := os.ReadDir(tmpRun); len(ents) != 0 {
			t.Errorf("kiln wrote %v into another user's %s", ents, tmpRun)
		}

		// A kiln built without cgo has no constructor: each command makes
		// a namespace of its own, and no holder.
		plain := filepath.Join(r.dir, "kiln-plain")
		releaseKiln(t, plain, false)
		fresh := r.userDir(t, "run-plain")
		cmd = r.command("run", "busybox", "id", "-u")
		cmd.Args[slices.Index(cmd.Args, r.bin)] = plain
		setEnv(cmd, "XDG_RUNTIME_DIR", fresh)
		if out, err := cmd.Output(); err != nil || string(out) != "0\n" {
			t.Errorf("kiln without cgo: %v: %q", err, out)
		}
		if ents, _ := os.ReadDir(fresh); len(ents) != 0 {
			t.Errorf("kiln without cgo made %v in its runtime directory", ents)
		}
	})

	t.Run("hello", func(t *testing.T) {
		ctx := hello
		res := r.mustKiln(t, "build", "-f", filepath.Join(ctx, "app.yml"), "-t", "hello", ctx)
		for _, want := range []string{"passed: test: greeting", "passed: test: app-runs", "rootless: containers run without resource limits"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("the rootless build did not print %q:\n%s", want, res.stderr)
			}
		}
		mustKiln(t, rootRoot, "build", "-f", filepath.Join(ctx, "app.yml"), "-t", "hello", ctx)
		r.compareWithRoot(t, rootRoot, "hello")
		if got := r.mustKiln(t, "run", "hello", "cat", "/greeting").stdout; got != "hello from a kiln build\n" {
			t.Errorf("kiln run hello printed %q", got)
		}
		// The store is the user's, under its XDG data directory.
		if _, err := os.Stat(filepath.Join(r.root(), "images")); err != nil {
			if _, err2 := os.Stat(r.root()); err2 != nil {
				t.Errorf("no kiln root at %s: %v", r.root(), err2)
			}
		}
	})

	t.Run("dockerfile-owners", func(t *testing.T) {
		ctx := r.context(t, "owners", map[string]string{
			"Dockerfile": `FROM busybox
COPY note.txt /home/app/
RUN chown 1000:1000 /home/app/note.txt && mkdir /data && echo x > /data/f && chown -R 1000:1000 /data
RUN cp /bin/busybox /usr/bin/sbox && chown 0:1000 /usr/bin/sbox && chmod 4755 /usr/bin/sbox && chmod 2755 /srv
RUN touch /usr/bin/capped /usr/bin/setuid && chown 65534:65534 /var/nobody/file
RUN rm /etc/removeme && rm -rf /opq && mkdir /opq && echo b > /opq/b
USER 1000:1000
RUN echo by-user > /data/by-user && id -u > /data/uid && echo more >> /home/app/notes
USER root
RUN test "$(cat /data/uid)" = 1000 && test "$(stat -c %u:%g /data/by-user)" = 1000:1000
`,
			"note.txt": "note\n",
		})
		r.mustKiln(t, "build", "-t", "owners", ctx)
		mustKiln(t, rootRoot, "build", "-t", "owners", ctx)
		got := strings.Join(r.compareWithRoot(t, rootRoot, "owners"), "\n")
		// What the comparison must have seen, so that equal means right.
		for _, want := range []string{
			"data/by-user type=0 1000:1000", "home/app/note.txt type=0 1000:1000",
			"usr/bin/sbox type=0 0:1000 04755", "srv/ type=5 33:33 02755",
			"usr/bin/capped type=0 0:0 0755", "security.capability=01000002",
			"var/nobody/file type=0 65534:65534", "home/app/notes type=0 1000:1000 0600",
			"etc/.wh.removeme", "opq/.wh..wh..opq",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("the rootless image lacks %q:\n%s", want, got)
			}
		}
	})

	t.Run("copy-snapshotter", func(t *testing.T) {
		// Where overlayfs does not mount in a user namespace, kiln copies:
		// the image root's copy snapshotter makes.
		ctx := hello
		r.mustKiln(t, "--snapshotter", "copy", "build", "--no-cache", "-f", filepath.Join(ctx, "app.yml"), "-t", "hello-copy", ctx)
		mustKiln(t, rootRoot, "--snapshotter", "copy", "build", "--no-cache", "-f", filepath.Join(ctx, "app.yml"), "-t", "hello-copy", ctx)
		r.compareWithRoot(t, rootRoot, "hello-copy")
	})

	t.Run("device-node", func(t *testing.T) {
		// No device can be made in a user namespace: Buildah leaves such
		// an entry out without a word; kiln fails, naming it.
		devBase := r.baseTar(t, "dev.tar", []tarEntry{{tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Gid: 6}, ""}})
		r.mustKiln(t, "import", devBase, "-t", "devbase", "--cmd", "/bin/sh")
		res := r.kiln(t, nil, "run", "devbase", "true")
		if res.code == 0 || !strings.Contains(res.stderr, "dev/sda: a device node (8:0) cannot be made by a rootless kiln") {
			t.Errorf("a base with a device node: exit %d, stderr %q", res.code, res.stderr)
		}
	})

	t.Run("no-subids", func(t *testing.T) {
		// A user without subordinate ids: uid 0 alone is mapped, with a
		// warning; a base of root's files builds, one of other users'
		// fails, saying why.
		const name = rootlessUser + "-nosub"
		if _, err := user.Lookup(name); err != nil {
			if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name).CombinedOutput(); err != nil {
				t.Fatalf("useradd: %v: %s", err, out)
			}
		}
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
			if b, _ := os.ReadFile(f); strings.Contains("\n"+string(b), "\n"+name+":") {
				t.Skipf("skipping: %s has a range in %s", name, f)
			}
		}
		n := *r
		n.uid, _ = strconv.Atoi(u.Uid)
		n.gid, _ = strconv.Atoi(u.Gid)
		n.home = n.userDir(t, "home-nosub")
		n.run = n.userDir(t, "run-nosub")
		t.Cleanup(func() { n.stopHolder(t) })
		rootOnly := r.baseTar(t, "rootonly.tar", nil)
		res := n.mustKiln(t, "import", rootOnly, "-t", "busybox", "--cmd", "/bin/sh")
		if !strings.Contains(res.stderr, "has no range in /etc/subuid or /etc/subgid: only uid and gid 0 are mapped") {
			t.Errorf("no warning of the missing range: %q", res.stderr)
		}
		if got := n.mustKiln(t, "run", "busybox", "id", "-u").stdout; got != "0\n" {
			t.Errorf("id -u: %q", got)
		}
		n.mustKiln(t, "import", base, "-t", "multi", "--cmd", "/bin/sh")
		res = n.kiln(t, nil, "run", "multi", "true")
		if res.code == 0 || !strings.Contains(res.stderr, "belongs to 1000:1000, which this rootless kiln's user namespace does not map") {
			t.Errorf("a base of other users' files without subordinate ids: exit %d, stderr %q", res.code, res.stderr)
		}
	})

	t.Run("toolbox-as-user", func(t *testing.T) {
		// A step's user runs the toolbox's kiln, which must not try to
		// go rootless itself, in a rootless build as in root's.
		ctx := r.context(t, "toolbox", map[string]string{"app.yml": `from: busybox
steps:
  - run: echo hi > /hello
  - user: "1000"
  - run: /.kiln/bin/kiln checksum /hello 98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4 && id -u > /tmp/uid
`})
		// This test binary is no toolbox: both take the kiln built.
		args := []string{"build", "--progress", "plain", "--kiln-binary", r.bin, "-t", "toolbox", "-f", filepath.Join(ctx, "app.yml"), ctx}
		r.mustKiln(t, args...)
		mustKiln(t, rootRoot, args...)
		got := strings.Join(r.compareWithRoot(t, rootRoot, "toolbox"), "\n")
		if !strings.Contains(got, "tmp/uid type=0 1000:0") {
			t.Errorf("the step did not run as 1000:\n%s", got)
		}
	})

	t.Run("limits-fail", func(t *testing.T) {
		res := r.kiln(t, nil, "run", "--memory", "64m", "busybox", "true")
		if res.code == 0 || !strings.Contains(res.stderr, "need a cgroup") {
			t.Errorf("kiln run --memory without a cgroup: exit %d, stderr %q", res.code, res.stderr)
		}
	})

	t.Run("debugger-pty", func(t *testing.T) {
		ctx := r.context(t, "debug", map[string]string{"app.yml": failingManifest})
		p := startPTYCommand(t, r.command("build", "--debug", "--progress", "plain", "-f", filepath.Join(ctx, "app.yml"), ctx))
		p.expect("(kiln) ", 1, "continue")
		p.expect("exit code 3", 1, "shell")
		p.expect("# ", 1, "cat /partial; echo in-$((6*7)); id -u")
		p.expect("in-42", 1, "exit")
		p.expect("(kiln) ", 3, "quit")
		code, got := p.wait()
		if code == 0 {
			t.Error("quit: exit 0")
		}
		if !strings.Contains(got, "partial\r\nin-42") && !strings.Contains(got, "partial\nin-42") {
			t.Errorf("the shell did not show the step's /partial")
		}
	})

	t.Run("cache-secret-attach-run-it", func(t *testing.T) {
		ctx := r.context(t, "mounts", map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=cache,target=/cache,uid=1000 echo hit >> /cache/log && stat -c %u /cache > /cache-owner && wc -l < /cache/log > /count
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /toklen && test ! -e /run/secrets/tok-copy
RUN echo partial > /partial && exit 3
`})
		secret := filepath.Join(r.dir, "tok")
		if err := os.WriteFile(secret, []byte("s3cret"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := r.kiln(t, nil, "build", "--progress", "plain", "--debug-on-fail", "--secret", "id=tok,src="+secret, ctx)
		if res.code == 0 {
			t.Fatalf("a failing build exited 0:\n%s", res.stderr)
		}
		_, rest, _ := strings.Cut(res.stderr, "kept the failed step's filesystem as ")
		name, _, _ := strings.Cut(rest, ":")
		if name == "" {
			t.Fatalf("no kept filesystem:\n%s", res.stderr)
		}
		got := r.mustKiln(t, "debug", "attach", name, "--", "cat", "/count", "/cache-owner", "/toklen", "/partial").stdout
		if got != "1\n1000\n6\npartial\n" {
			t.Errorf("debug attach: %q, want the cache count, its owner, the secret's length and /partial", got)
		}
		r.mustKiln(t, "debug", "rm", name)
		// kiln run -it on a terminal.
		p := startPTYCommand(t, r.command("run", "-it", "busybox", "sh"))
		p.expect("# ", 1, "tty; echo run-$((2*21)); exit 7")
		code, screen := p.wait()
		if code != 7 || !strings.Contains(screen, "/dev/pts/0") || !strings.Contains(screen, "run-42") {
			t.Errorf("kiln run -it: exit %d, want 7, a terminal and run-42", code)
		}
	})

	t.Run("dap", func(t *testing.T) {
		ctx := r.context(t, "dap", map[string]string{"app.yml": dapManifest})
		c := startDAPWith(t, func(cctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
			cmd := r.command("dap")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return -1
			}
			stop := context.AfterFunc(cctx, func() { cmd.Process.Kill() })
			defer stop()
			err := cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			return 0
		})
		c.launch(map[string]any{"manifest": filepath.Join(ctx, "app.yml"), "context": ctx, "stopOnEntry": true}, false)
		c.send("configurationDone", &godap.ConfigurationDoneRequest{})
		if ev, top := c.stopped(); ev.Body.Reason != "entry" || top.Line != 4 {
			t.Fatalf("stopped (%s) at line %d, want on entry at line 4", ev.Body.Reason, top.Line)
		}
		c.send("continue", &godap.ContinueRequest{Arguments: godap.ContinueArguments{ThreadId: 1}})
		if ev := next[*godap.ExitedEvent](c, nil); ev.Body.ExitCode != 0 {
			t.Errorf("the build exited %d\n%s", ev.Body.ExitCode, c.output())
		}
		if !strings.Contains(c.output("stdout"), "third step ran") {
			t.Errorf("the steps' output: %q", c.output("stdout"))
		}
		c.send("disconnect", &godap.DisconnectRequest{})
		next[*godap.DisconnectResponse](c, nil)
	})

	t.Run("push-pull", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		dest := strings.TrimPrefix(srv.URL, "http://") + "/rootless/owners:1"
		r.mustKiln(t, "push", "owners", dest)
		r.mustKiln(t, "rmi", "owners")
		pulled := r.mustKiln(t, "pull", dest).stdout
		mustKiln(t, rootRoot, "pull", dest)
		if !strings.Contains(pulled, "sha256:") {
			t.Errorf("kiln pull printed %q", pulled)
		}
		// The pulled image runs rootless, its owners as pushed.
		if got := r.mustKiln(t, "run", dest, "stat", "-c", "%u:%g %a", "/data/by-user", "/usr/bin/sbox").stdout; got != "1000:1000 644\n0:1000 4755\n" {
			t.Errorf("the pulled image's files: %q", got)
		}
	})

	t.Run("escape", func(t *testing.T) {
		// A file of the user's, outside the build: a step must not
		// reach it, though the user's own id is root in the step.
		canary := filepath.Join(r.home, "canary")
		if err := os.WriteFile(canary, []byte("untouched\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chown(canary, r.uid, r.gid)
		// Each line prints ESCAPE-… when the step could do what it
		// must not (the split quotes keep the marker out of the
		// command line kiln shows).
		ctx := r.context(t, "escape", map[string]string{"app.yml": fmt.Sprintf(`from: busybox
steps:
  - run: |
      for p in %[1]s /proc/1/root%[1]s /proc/self/root%[1]s /proc/1/cwd/../../..%[1]s; do echo pwned > $p 2>/dev/null && echo ESCAPE"-"write $p; done
      mount --bind / /mnt 2>/dev/null && echo ESCAPE"-"bind-mount
      mount -t tmpfs tmpfs /mnt 2>/dev/null && echo ESCAPE"-"tmpfs
      echo pwned > /sys/kernel/uevent_helper 2>/dev/null && echo ESCAPE"-"sysfs
      mknod /dev/sda b 8 0 2>/dev/null && echo ESCAPE"-"mknod
      unshare -U true 2>/dev/null && echo ESCAPE"-"userns
      find / -xdev -name canary 2>/dev/null | grep -q . && echo ESCAPE"-"canary-visible
      echo checks-done
`, canary)})
		res := r.mustKiln(t, "build", "--no-cache", "--progress", "plain", "-f", filepath.Join(ctx, "app.yml"), ctx)
		if !strings.Contains(res.stderr, "checks-done") {
			t.Fatalf("the step's output is not shown:\n%s", res.stderr)
		}
		if strings.Contains(res.stderr, "ESCAPE-") {
			t.Errorf("a rootless step could do what it must not:\n%s", res.stderr)
		}
		if b, _ := os.ReadFile(canary); string(b) != "untouched\n" {
			t.Errorf("a rootless step wrote the user's file: %q", b)
		}
	})

	t.Run("interrupt", func(t *testing.T) {
		// SIGINT sent to the kiln the user started reaches the kiln in
		// the user namespace: the build stops with 130 and cleans up.
		marker := fmt.Sprintf("32.%d%d", os.Getpid()%1000, time.Now().UnixNano()%1000)
		ctx := r.context(t, "interrupt", map[string]string{"app.yml": "from: busybox\nsteps:\n  - run: sleep " + marker + "\n"})
		cmd := r.command("build", "--progress", "plain", "-f", filepath.Join(ctx, "app.yml"), ctx)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitForProcess(t, marker)
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
			t.Errorf("after SIGINT: %v, want exit status %d\n%s", err, exitInterrupted, stderr.String())
		}
		if ps := processesWith(marker); len(ps) > 0 {
			t.Errorf("after SIGINT, the step's processes live on: %v", ps)
		}
		r.checkClean(t, "after SIGINT")
	})

	t.Run("crash", func(t *testing.T) {
		marker := fmt.Sprintf("31.%d%d", os.Getpid()%1000, time.Now().UnixNano()%1000)
		ctx := r.context(t, "crash", map[string]string{"app.yml": "from: busybox\nsteps:\n  - run: echo before > /before\n  - run: sleep " + marker + "\n"})
		cmd := r.command("build", "--progress", "plain", "-f", filepath.Join(ctx, "app.yml"), ctx)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		for sc.Scan() && !strings.Contains(sc.Text(), "running: run: sleep") {
		}
		waitForProcess(t, marker)
		// The kiln the user started runs the build itself, joined to the
		// holder's user namespace.
		kiln := cmd.Process.Pid
		cmd.Process.Signal(syscall.SIGKILL)
		go io.Copy(io.Discard, stderr)
		cmd.Wait()
		deadline := time.Now().Add(commandTimeout)
		gone := func() bool {
			_, err := os.Stat("/proc/" + strconv.Itoa(kiln))
			return len(processesWith(marker)) == 0 && err != nil
		}
		for !gone() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !gone() {
			t.Errorf("after SIGKILL, processes of the build live on: the step's %v", processesWith(marker))
		}
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mounts), r.root()) {
			t.Errorf("after SIGKILL, a mount under %s is left", r.root())
		}
		// The next kiln sweeps the rest: no container or snapshot left.
		r.mustKiln(t, "run", "busybox", "true")
		r.checkClean(t, "after SIGKILL and another kiln")
	})
}

// checkClean fails when the user's kiln root holds a container or a
// snapshot.
func (r *rootlessEnv) checkClean(t *testing.T, when string) {
	t.Helper()
	for _, p := range leftInRoot(r.root()) {
		t.Errorf("%s, left behind: %s", when, p)
	}
}

// waitForProcess waits until a process whose command line holds marker
// runs.
func waitForProcess(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(commandTimeout)
	for len(processesWith(marker)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no process with %q ran", marker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesWith returns the PIDs whose command line contains s.
func processesWith(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// startPTYCommand runs cmd on a new pseudo-terminal, its controlling
// one, for a test to type into.
func startPTYCommand(t *testing.T, cmd *exec.Cmd) *ptyKiln {
	t.Helper()
	p := newPTY(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.tty, p.tty, p.tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cancel = func() { cmd.Process.Kill() }
	t.Cleanup(p.cancel)
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		p.done <- code
	}()
	return p
}
