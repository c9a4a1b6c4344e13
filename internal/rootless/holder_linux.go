package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// holderArg0 is the holder's name in ps.
const holderArg0 = "kiln-userns"

// makeHolder makes sure the holder file at path names a live holder:
// under a lock beside it, it keeps one another kiln made meanwhile, or
// starts a holder (sleep, in a new user namespace whose id maps are
// uidArgs and gidArgs) and writes the file. The holder is a session of
// its own, holds no descriptor of kiln's, has / as its directory and
// lives until it is killed.
func makeHolder(path string, uidArgs, gidArgs []string) error {
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("making the runtime directory: %w", err)
	}
	if err := ownDir(dir); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "userns.lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("locking the holder file: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking the holder file: %w", err)
	}
	if _, err := liveHolder(path); err == nil {
		return nil
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return fmt.Errorf("starting the holder: %w", err)
	}
	arg0 := holderArg0
	if real, err := filepath.EvalSymlinks(sleep); err != nil || filepath.Base(real) != "sleep" {
		arg0 = "sleep" // a multi-call binary (busybox) reads its applet from it
	}
	cmd := &exec.Cmd{
		Path: sleep,
		Args: []string{arg0, "2147483647"},
		Dir:  "/",
		Env:  []string{},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER,
			Setsid:     true,
		},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the holder: %w", err)
	}
	pid := cmd.Process.Pid
	if err := func() error {
		if err := writeMaps(pid, uidArgs, gidArgs); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/user", &st); err != nil {
			return fmt.Errorf("reading the holder's user namespace: %w", err)
		}
		tmp := path + ".new"
		if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", pid, st.Ino), 0o600); err != nil {
			return fmt.Errorf("writing the holder file: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("writing the holder file: %w", err)
		}
		return nil
	}(); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	return cmd.Process.Release()
}

// ownDir fails unless dir is a directory of the user's that no one else
// may write (the constructor trusts no other).
func ownDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("checking the runtime directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s is not a directory of yours that only you may write", dir)
	}
	return nil
}

// nsGetOwnerUID is linux/nsfs.h's NS_GET_OWNER_UID, _IO(0xb7, 0x4): the
// uid that owns a user namespace.
const nsGetOwnerUID = 0xb704

// liveHolder returns the pid of the holder the file at path names when
// that process lives with the user namespace the file records, and the
// user owns that namespace (as nsjoin's constructor checks).
func liveHolder(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var pid int
	var ino uint64
	if _, err := fmt.Sscan(string(b), &pid, &ino); err != nil || pid <= 0 {
		return 0, fmt.Errorf("holder file %s: not \"PID INODE\": %q", path, strings.TrimSpace(string(b)))
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("holder %d is gone: %w", pid, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Ino != ino {
		return 0, fmt.Errorf("holder %d is gone", pid)
	}
	if owner, err := unix.IoctlGetUint32(fd, nsGetOwnerUID); err != nil || int(owner) != os.Getuid() {
		return 0, fmt.Errorf("process %d is not a holder of yours", pid)
	}
	return pid, nil
}
