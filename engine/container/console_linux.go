package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// newConsole makes a pseudo-terminal in the container's /dev/pts (the
// caller has pivoted into the container), its replica owned by uid:gid.
func newConsole(uid, gid uint32) (master, replica *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	fail := func(err error) (*os.File, *os.File, error) {
		m.Close()
		return nil, nil, fmt.Errorf("making a terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fail(err)
	}
	path := "/dev/pts/" + strconv.Itoa(n)
	r, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	if err := unix.Fchown(int(r.Fd()), int(uid), int(gid)); err != nil {
		r.Close()
		return fail(err)
	}
	return m, r, nil
}

// sendFile passes f over the unix socket sock.
func sendFile(sock int, f *os.File) error {
	return unix.Sendmsg(sock, []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
}

// recvFile receives a file passed with sendFile.
func recvFile(sock int, name string) (*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		_, oobn, _, _, err := unix.Recvmsg(sock, make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		fds, err := parseRights(oob[:oobn])
		if err != nil {
			return nil, err
		}
		if len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, errors.New("no terminal was passed")
		}
		return os.NewFile(uintptr(fds[0]), name), nil
	}
}

// attach copies in to the terminal's controlling side and its output to
// out; the returned channel closes when the output has ended (every
// process holding the terminal is gone).
func attach(master *os.File, in io.Reader, out io.Writer) <-chan struct{} {
	done := make(chan struct{})
	if in != nil {
		go func() { _, _ = io.Copy(master, in) }()
	}
	go func() {
		if out == nil {
			out = io.Discard
		}
		_, _ = io.Copy(out, master) // ends with EIO
		close(done)
	}()
	return done
}

// drained waits, briefly, for a terminal's output to end.
func drained(done <-chan struct{}) {
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}
