package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/subid"
)

// envStage tells a re-executed kiln where it is: stageWait (just cloned
// into the new namespaces, waiting for its id maps on fd 3), stageInside
// (mapped, root of the user namespace) or stageJoined (started inside
// the holder's namespace by nsjoin's constructor, or by such a kiln).
// envMade marks the kiln started again right after it made the holder:
// if it is not joined then, it says why rather than make another.
const (
	envParent   = "KILN_ROOTLESS_PARENT" // the pid of the kiln outside
	envStage    = "KILN_ROOTLESS"
	envMade     = "KILN_ROOTLESS_MADE"
	stageWait   = "wait"
	stageInside = "1"
	stageJoined = "joined"
)

// Active reports whether this kiln runs rootless: in a user namespace
// that Enter made or joined.
func Active() bool {
	s := os.Getenv(envStage)
	return s == stageInside || s == stageJoined
}

// Enter is called first thing in main. As root, in the namespaces
// already, or for a command that only prints (version, help), it does
// nothing and returns false.
//
// Joined to the user's holder by nsjoin's constructor (h.Joined), it
// only marks the process as rootless (for the kilns it starts), makes
// its mounts private and returns false. With the constructor but no
// holder yet, it makes one and executes kiln again, which then joins it.
// Otherwise (a kiln without the constructor, or a holder it could not
// make, said through warn) it runs this program again, with the same
// arguments, in a new user and mount namespace whose root is the
// calling user, waits for it and returns true with its exit status:
// main then exits with it. warn receives the warnings (a user without
// subordinate ids).
//
// The network namespace stays the user's own. A child is killed when
// this process dies (PDEATHSIG), and its mounts go with its mount
// namespace.
func Enter(warn func(string), h Holder) (done bool, code int, err error) {
	switch os.Getenv(envStage) {
	case stageWait:
		return true, 0, waitForMaps()
	case stageInside:
		if os.Geteuid() != 0 {
			return true, 0, errors.New("rootless: not root in the user namespace: its id maps were not written")
		}
		// The exec that gave the capabilities of the namespace cleared the
		// parent-death signal: set it again, then check that the parent
		// did not die before.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return true, 0, fmt.Errorf("rootless: setting the parent-death signal: %w", err)
		}
		if strconv.Itoa(os.Getppid()) != os.Getenv(envParent) {
			return true, 0, errors.New("rootless: the kiln outside the user namespace died")
		}
		return false, 0, private()
	case stageJoined:
		// Started by a joined kiln: in its namespaces already.
		if os.Geteuid() != 0 || !Inside() {
			return true, 0, errors.New("rootless: not root in a user namespace: " + envStage + "=" + stageJoined + " was set outside kiln")
		}
		return false, 0, nil
	}
	if h.Joined {
		return false, 0, joined(warn, h.Path)
	}
	if os.Geteuid() == 0 || !needsNamespace(os.Args[1:]) {
		return false, 0, nil
	}
	if h.Err != nil {
		return true, 0, fmt.Errorf("rootless: joining the user namespace of the holder in %s: %w", h.Path, h.Err)
	}
	uidArgs, gidArgs, err := idMaps(os.Getuid(), os.Getgid(), warn)
	if err != nil {
		return true, 0, err
	}
	if h.Available && h.Path != "" {
		if os.Getenv(envMade) != "" {
			return true, 0, fmt.Errorf("rootless: kiln made the holder in %s but could not join it", h.Path)
		}
		err := makeHolder(h.Path, uidArgs, gidArgs)
		if err == nil {
			env := append(os.Environ(), envMade+"=1")
			err = unix.Exec("/proc/self/exe", os.Args, env)
		}
		warn(fmt.Sprintf("rootless: %v: this command makes a user namespace of its own", err))
	}
	code, err = reexec(uidArgs, gidArgs)
	return true, code, err
}

// private makes the mounts of the process's mount namespace private:
// mounts made here never reach the user's namespace.
func private() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("rootless: making the mounts private: %w", err)
	}
	return nil
}

// joined sets up a kiln that the constructor joined to the holder (file
// path): rootless for what it starts, mounts private, HOME found, and
// the warnings a new namespace would give.
func joined(warn func(string), path string) error {
	if os.Getenv(envMade) != "" || !needsNamespace(os.Args[1:]) {
		// The kiln that made the holder said them; a command that only
		// prints has none to say.
		warn = func(string) {}
	}
	os.Unsetenv(envMade)
	if err := os.Setenv(envStage, stageJoined); err != nil {
		return err
	}
	if err := private(); err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return fmt.Errorf("rootless: reading the user namespace's uid map: %w", err)
	}
	var in, uid int
	if _, err := fmt.Sscan(string(b), &in, &uid); err != nil || in != 0 {
		return fmt.Errorf("rootless: the holder's namespace does not map root: %q", b)
	}
	gb, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return fmt.Errorf("rootless: reading the user namespace's gid map: %w", err)
	}
	var gid int
	fmt.Sscan(string(gb), &in, &gid)
	homeFor(uid)
	uidArgs, gidArgs, err := idMaps(uid, gid, warn)
	if err != nil {
		return err
	}
	if !sameMap(string(b), uidArgs) || !sameMap(string(gb), gidArgs) {
		pid, _ := liveHolder(path)
		warn(fmt.Sprintf("rootless: the user namespace kept by process %d maps the ids /etc/subuid and /etc/subgid gave when it started, not today's: end it (kill %d) and kiln makes a new one", pid, pid))
	}
	return nil
}

// sameMap reports whether id map m (uid_map's form) maps what args (the
// newuidmap arguments after the pid: inside outside count ...) do.
func sameMap(m string, args []string) bool {
	return strings.Join(strings.Fields(m), " ") == strings.Join(args, " ")
}

// homeFor sets HOME to user uid's home when it is unset: inside, the
// user is root, whose home it is not.
func homeFor(uid int) {
	if filepath.IsAbs(os.Getenv("HOME")) {
		return
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		os.Setenv("HOME", u.HomeDir)
	}
}

// waitForMaps is the child's side: it waits until the parent has
// written its id maps (a byte on fd 3; EOF means the parent failed),
// then executes itself again, now as root of the user namespace with
// its capabilities there (an exec before the maps were written lost
// them).
func waitForMaps() error {
	f := os.NewFile(3, "userns-sync")
	var b [1]byte
	n, _ := f.Read(b[:])
	f.Close()
	if n != 1 {
		return errors.New("rootless: the id maps of the user namespace were not written")
	}
	env := append(withoutStage(os.Environ()), envStage+"="+stageInside, envParent+"="+strconv.Itoa(os.Getppid()))
	if err := unix.Exec("/proc/self/exe", os.Args, env); err != nil {
		return fmt.Errorf("rootless: re-executing kiln in the user namespace: %w", err)
	}
	return nil
}

func withoutStage(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, envStage+"=") && !strings.HasPrefix(e, envParent+"=") {
			out = append(out, e)
		}
	}
	return out
}

// idMaps returns the newuidmap and newgidmap arguments (after the pid)
// for the calling user, and warns when its ranges fall short.
func idMaps(uid, gid int, warn func(string)) (uidArgs, gidArgs []string, err error) {
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	uids, err := subIDs("/etc/subuid", name, uid)
	if err != nil {
		return nil, nil, err
	}
	gids, err := subIDs("/etc/subgid", name, uid)
	if err != nil {
		return nil, nil, err
	}
	uidArgs, uidFull := mapArgs(uid, uids)
	gidArgs, gidFull := mapArgs(gid, gids)
	if len(uids) == 0 || len(gids) == 0 {
		// Only the user's own ids, which the kernel lets us map ourselves.
		uidArgs, gidArgs = uidArgs[:3], gidArgs[:3]
		warn(fmt.Sprintf("rootless: user %s has no range in /etc/subuid or /etc/subgid: only uid and gid 0 are mapped (onto you), so images whose files belong to other users cannot be built; give the user a range: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", name, name))
	} else if !uidFull || !gidFull {
		warn(fmt.Sprintf("rootless: the ranges of user %s in /etc/subuid and /etc/subgid hold fewer than %d ids: files of the ids past them cannot be built", name, Size))
	}
	return uidArgs, gidArgs, nil
}

// reexec is the parent's side.
func reexec(uidArgs, gidArgs []string) (int, error) {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer syncW.Close()
	exe, _ := os.Executable()
	homeFor(os.Getuid())
	cmd := waiter("/bin/sh", exe, os.Args, os.Getpid(), os.Environ())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{syncR}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	// PDEATHSIG fires when the forking thread ends: keep it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		syncR.Close()
		return 0, fmt.Errorf("rootless: starting kiln in a user namespace: %w", err)
	}
	syncR.Close()
	pid := cmd.Process.Pid
	if err := writeMaps(pid, uidArgs, gidArgs); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, err
	}
	if _, err := syncW.Write([]byte{'\n'}); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("rootless: starting kiln in a user namespace: %w", err)
	}
	syncW.Close()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			// A terminal's ^C reaches the whole foreground process
			// group, the child too: pass on only what was sent to us.
			if s == unix.SIGINT && foreground() {
				continue
			}
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("rootless: waiting for kiln in the user namespace: %w", err)
	}
	return 0, nil
}

// waitScript is the shell's part of waiter: $0 is kiln, "$@" its
// arguments, passed as they are.
const waitScript = `read -r _ <&3 || exit 125; exec 3<&-; exec "$0" "$@"`

// waiter returns the command the user namespace is made for. It waits
// for a line on fd 3, written once the id maps are, then executes kiln
// (exe, with args[1:]), now root of the namespace with its capabilities
// there (an exec before the maps were written lost them). A shell does
// the waiting: it starts in a fraction of kiln's time, which would be
// spent beside newuidmap and newgidmap on the same cores (about 3 ms of
// a command's 17 here). Without the shell, or when kiln's own file
// cannot be found, kiln itself waits (stageWait) and executes
// /proc/self/exe.
func waiter(shell, exe string, args []string, parent int, env []string) *exec.Cmd {
	_, serr := os.Stat(shell)
	_, eerr := os.Stat(exe)
	if exe == "" || serr != nil || eerr != nil {
		cmd := exec.Command("/proc/self/exe")
		cmd.Args = args
		cmd.Env = append(withoutStage(env), envStage+"="+stageWait)
		return cmd
	}
	cmd := exec.Command(shell, append([]string{"-c", waitScript, exe}, args[1:]...)...)
	cmd.Env = append(withoutStage(env), envStage+"="+stageInside, envParent+"="+strconv.Itoa(parent))
	return cmd
}

// foreground reports whether this process's group is its terminal's
// foreground group.
func foreground() bool {
	pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pg == unix.Getpgrp()
}

func subIDs(path, name string, id int) ([]Range, error) {
	es, err := subid.Read(path)
	if err != nil {
		return nil, fmt.Errorf("rootless: %w", err)
	}
	r, err := rangesOf(es, name, id)
	if err != nil {
		return nil, fmt.Errorf("rootless: reading %s: %w", path, err)
	}
	return r, nil
}

// writeMaps writes the id maps of the child pid: through the setuid
// newuidmap and newgidmap for subordinate ranges, or, mapping the user's
// own ids only, directly (which the kernel allows once setgroups is
// denied).
func writeMaps(pid int, uidArgs, gidArgs []string) error {
	p := strconv.Itoa(pid)
	if len(uidArgs) == 3 && len(gidArgs) == 3 {
		for _, w := range []struct{ file, data string }{
			{"uid_map", strings.Join(uidArgs, " ")},
			{"setgroups", "deny"},
			{"gid_map", strings.Join(gidArgs, " ")},
		} {
			if err := os.WriteFile("/proc/"+p+"/"+w.file, []byte(w.data+"\n"), 0); err != nil {
				return fmt.Errorf("rootless: writing the user namespace's %s: %w", w.file, err)
			}
		}
		return nil
	}
	// The two tools write different files: run them side by side (each
	// is a setuid program, slow to start on a loaded machine).
	errs := make(chan error, 2)
	for _, m := range []struct {
		tool string
		args []string
	}{{"newuidmap", uidArgs}, {"newgidmap", gidArgs}} {
		go func() {
			out, err := exec.Command(m.tool, append([]string{p}, m.args...)...).CombinedOutput()
			switch {
			case errors.Is(err, exec.ErrNotFound):
				err = fmt.Errorf("rootless: %s is not installed (Debian: apt-get install uidmap): %w", m.tool, err)
			case err != nil:
				err = fmt.Errorf("rootless: %s %s %s: %w: %s", m.tool, p, strings.Join(m.args, " "), err, strings.TrimSpace(string(out)))
			}
			errs <- err
		}()
	}
	return errors.Join(<-errs, <-errs)
}
