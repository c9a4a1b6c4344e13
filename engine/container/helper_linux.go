package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/osthread"
)

// The exec helper's file descriptors: its control socket, and a pipe on
// which it tells the init that it runs.
const (
	helperCtrlFd  = 3
	helperReadyFd = 4
)

// runHelper serves exec requests until the control socket closes. Each
// request is one SOCK_SEQPACKET message: an execRequest in JSON, with
// four file descriptors (the reply socket, stdin, stdout, stderr).
func runHelper() error {
	// The processes it starts get only the stdio of their request.
	if err := StdioOnly(); err != nil {
		return err
	}
	// Processes of the container must not reach into the helper through
	// /proc/2: it keeps capabilities they do not have.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making the helper non-dumpable: %w", err)
	}
	ready := os.NewFile(helperReadyFd, "ready")
	if _, err := ready.Write([]byte{1}); err != nil {
		return fmt.Errorf("telling the init the helper runs: %w", err)
	}
	ready.Close()
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(helperCtrlFd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading a request: %w", err)
		}
		if n == 0 {
			return nil // kiln closed the socket
		}
		fds, err := parseRights(oob[:oobn])
		if err != nil || len(fds) != 4 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			continue
		}
		var req execRequest
		if err := json.Unmarshal(buf[:n], &req); err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			continue
		}
		osthread.Own(func() { serveExec(req, fds) })
	}
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, err
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

// serveExec runs one process and reports its end on the reply socket. It
// runs on an OS thread of its own (osthread.Own), which it confines
// before the fork and never gives back to the Go scheduler.
func serveExec(req execRequest, fds []int) {
	reply := os.NewFile(uintptr(fds[0]), "reply")
	defer reply.Close()
	stdio := []*os.File{
		os.NewFile(uintptr(fds[1]), "stdin"),
		os.NewFile(uintptr(fds[2]), "stdout"),
		os.NewFile(uintptr(fds[3]), "stderr"),
	}
	closeStdio := func() {
		for _, f := range stdio {
			f.Close()
		}
	}
	send := func(r execReply) { _ = json.NewEncoder(reply).Encode(r) }

	p, err := prepareProcess(req.Process)
	if err == nil && req.Process.Terminal {
		// The terminal replaces the stdio kiln passed.
		var master, replica *os.File
		master, replica, err = newConsole(p.cred.uid, p.cred.gid)
		if err == nil {
			err = sendFile(fds[0], master)
			master.Close()
			closeStdio()
			stdio = []*os.File{replica, replica, replica}
		}
	}
	if err == nil {
		err = dropPrivileges(p.cred, req.DropMknod)
	}
	if err != nil {
		closeStdio()
		send(execReply{Error: err.Error()})
		return
	}
	cmd := &exec.Cmd{
		Path: p.path, Args: p.args, Env: p.env, Dir: p.dir,
		Stdin: stdio[0], Stdout: stdio[1], Stderr: stdio[2],
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: req.Process.Terminal},
	}
	err = cmd.Start()
	closeStdio()
	if err != nil {
		send(execReply{Error: fmt.Sprintf("exec %s: %v", p.args[0], err)})
		return
	}
	// kiln closes its end of the reply socket to cancel: kill the
	// process's whole session then.
	go func() {
		_, _ = io.Copy(io.Discard, reply)
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		send(execReply{Error: err.Error()})
		return
	}
	send(replyFor(cmd.ProcessState.Sys().(syscall.WaitStatus)))
}

func replyFor(ws syscall.WaitStatus) execReply {
	if ws.Signaled() {
		return execReply{Started: true, Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	}
	return execReply{Started: true, Code: ws.ExitStatus()}
}
