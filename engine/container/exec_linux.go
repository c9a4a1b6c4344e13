package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
)

// Exec runs p in the container through its exec helper; see
// engine.Container.
func (c *ctr) Exec(ctx context.Context, p engine.Process) (engine.Status, error) {
	if c.ctrl == nil {
		return engine.Status{}, fmt.Errorf("exec in container %s: it was created without exec support", c.id)
	}
	if len(p.Args) == 0 {
		return engine.Status{}, fmt.Errorf("exec in container %s: no command given", c.id)
	}
	select {
	case <-c.done:
		return engine.Status{}, fmt.Errorf("exec in container %s: it is not running", c.id)
	default:
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return engine.Status{}, fmt.Errorf("exec in container %s: %w", c.id, err)
	}
	local := os.NewFile(uintptr(fds[0]), "reply")
	remote := os.NewFile(uintptr(fds[1]), "reply-remote")
	defer local.Close()

	st := &stdio{}
	defer st.closeAll()
	stdin, stdout, stderr := p.Stdin, p.Stdout, p.Stderr
	if p.Terminal {
		// The helper makes the terminal; these are placeholders.
		stdin, stdout, stderr = nil, nil, nil
	}
	in, err := st.reader(stdin)
	if err == nil {
		var out, errf *os.File
		if out, err = st.writer(stdout); err == nil {
			if errf, err = st.writer(stderr); err == nil {
				err = c.send(execRequest{Process: newProcessConfig(p), DropMknod: !c.deviceFilter()},
					remote, in, out, errf)
			}
		}
	}
	remote.Close()
	st.closeChildEnds()
	if err != nil {
		return engine.Status{}, fmt.Errorf("exec in container %s: %w", c.id, err)
	}

	var console <-chan struct{}
	if p.Terminal {
		master, err := recvFile(int(local.Fd()), "console")
		if err != nil {
			return engine.Status{}, fmt.Errorf("exec in container %s: receiving its terminal: %w", c.id, err)
		}
		defer master.Close()
		if p.Console != nil {
			p.Console(master)
		}
		console = attach(master, p.Stdin, p.Stdout)
	}
	replyc := make(chan execReply, 1)
	errc := make(chan error, 1)
	go func() {
		var r execReply
		if err := json.NewDecoder(local).Decode(&r); err != nil {
			errc <- err
			return
		}
		replyc <- r
	}()
	var r execReply
	cancelled := false
	select {
	case r = <-replyc:
	case err := <-errc:
		return engine.Status{}, fmt.Errorf("exec in container %s: the container ended (%v)", c.id, err)
	case <-ctx.Done():
		// Closing our end tells the helper to kill the process.
		cancelled = true
		_ = unix.Shutdown(int(local.Fd()), unix.SHUT_WR)
		select {
		case r = <-replyc:
		case <-errc:
			r = execReply{Started: true, Code: 137, Signal: "SIGKILL"}
		}
	}
	st.wait()
	drained(console)
	if r.Error != "" {
		return engine.Status{}, fmt.Errorf("exec in container %s: %s", c.id, r.Error)
	}
	return engine.Status{Code: r.Code, Signal: r.Signal, Cancelled: cancelled}, nil
}

func (c *ctr) send(req execRequest, files ...*os.File) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	return unix.Sendmsg(int(c.ctrl.Fd()), b, unix.UnixRights(fds...), nil, 0)
}

// stdio turns a process's readers and writers into files to pass to
// another process, with copying goroutines where they are not files.
type stdio struct {
	childEnds []*os.File // to close once passed
	ours      []*os.File // to close at the end
	copies    []chan struct{}
}

func (s *stdio) reader(r io.Reader) (*os.File, error) {
	if f, ok := r.(*os.File); ok {
		return f, nil
	}
	if r == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		s.childEnds = append(s.childEnds, f)
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.childEnds = append(s.childEnds, pr)
	s.ours = append(s.ours, pw)
	go func() {
		_, _ = io.Copy(pw, r)
		pw.Close()
	}()
	return pr, nil
}

func (s *stdio) writer(w io.Writer) (*os.File, error) {
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	if w == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		s.childEnds = append(s.childEnds, f)
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.childEnds = append(s.childEnds, pw)
	s.ours = append(s.ours, pr)
	done := make(chan struct{})
	s.copies = append(s.copies, done)
	go func() {
		_, _ = io.Copy(w, pr)
		close(done)
	}()
	return pw, nil
}

func (s *stdio) closeChildEnds() {
	for _, f := range s.childEnds {
		f.Close()
	}
	s.childEnds = nil
}

// wait waits for the output to be copied: the process and everything it
// started have closed their ends.
func (s *stdio) wait() {
	for _, d := range s.copies {
		<-d
	}
}

func (s *stdio) closeAll() {
	s.closeChildEnds()
	for _, f := range s.ours {
		f.Close()
	}
}
