package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine"
)

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		script string
		code   int
		signal string
	}{
		{"exit 0", 0, ""},
		{"exit 1", 1, ""},
		{"exit 3", 3, ""},
		{"sh -c 'kill -9 $$'; exit $?", 137, ""},
	} {
		r := e.run(context.Background(), engine.Spec{Process: sh(tc.script)})
		if r.status.Code != tc.code || r.status.Signal != tc.signal {
			t.Errorf("%q: status %+v, want code %d signal %q", tc.script, r.status, tc.code, tc.signal)
		}
	}
	// Killed from the host: 137. (PID 1 of a namespace cannot be sent
	// SIGKILL from inside it, as in Docker.)
	ctx := context.Background()
	mounts, err := e.sn.Prepare(ctx, "killed", []string{e.lower})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.rt.Create(ctx, engine.Spec{ID: "killed", Rootfs: mounts, Process: sh("sleep 100")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(ctx) //nolint:errcheck // checked below
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx)
	if err != nil || st.Code != 137 || st.Signal != "SIGKILL" {
		t.Errorf("killed container: %+v, %v; want 137 SIGKILL", st, err)
	}
	if err := c.Delete(ctx); err != nil {
		t.Error(err)
	}
}

// aliveWith reports the host processes (not zombies) whose command line
// holds marker.
func aliveWith(marker string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil || !strings.Contains(string(b), marker) {
			continue
		}
		if st, err := os.ReadFile(d + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		found = append(found, filepath.Base(d)+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return found
}

func TestBackgroundProcessesDieWithPID1(t *testing.T) {
	e := newEnv(t)
	marker := fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
	r := e.run(context.Background(), engine.Spec{Process: sh("sleep " + marker + " & sleep " + marker + " & echo started")})
	if r.status.Code != 0 || r.stdout != "started\n" {
		t.Fatalf("status %+v stdout %q stderr %q", r.status, r.stdout, r.stderr)
	}
	if left := aliveWith("sleep\x00" + marker); len(left) > 0 {
		t.Fatalf("processes left behind: %v", left)
	}
}

func TestCancelKillsWithinASecond(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	var cancelled time.Time
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancelled = time.Now()
		cancel()
	}()
	marker := fmt.Sprintf("%d.5", 2000+os.Getpid()%1000)
	r, err := e.tryRun(ctx, engine.Spec{Process: sh("trap '' TERM; sleep " + marker + " & sleep " + marker)})
	took := time.Since(cancelled)
	if err != nil {
		t.Fatal(err)
	}
	if !r.status.Cancelled || r.status.Code != 137 {
		t.Errorf("status %+v, want cancelled with 137", r.status)
	}
	if took > time.Second {
		t.Errorf("cancel took %v to end the container", took)
	}
	if left := aliveWith("sleep\x00" + marker); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	r := e.run(context.Background(), engine.Spec{Process: sh("sleep 30"), Timeout: 200 * time.Millisecond})
	if !r.status.TimedOut || r.status.Code != 137 || r.status.Err() == nil {
		t.Fatalf("status %+v, want timed out", r.status)
	}
}

// TestNoLeaksAfterManyRuns runs 50 containers, a third failing and a
// third cancelled, then checks that no mount, cgroup or state remains.
func TestNoLeaksAfterManyRuns(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		var p engine.Process
		switch i % 3 {
		case 0:
			p = sh("echo ok > /out")
		case 1:
			p = sh("exit 2")
		case 2:
			p = sh("sleep 10")
			time.AfterFunc(20*time.Millisecond, cancel)
		}
		if _, err := e.tryRun(ctx, engine.Spec{Process: p}); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: %v", i, err)
		}
		cancel()
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), e.root) {
		t.Errorf("mounts left:\n%s", grepLines(string(b), e.root))
	}
	if names, err := e.rt.cgroups.List(); err != nil || len(names) > 0 {
		t.Errorf("cgroups left: %v %v", names, err)
	}
	if entries, _ := os.ReadDir(e.rt.dir); len(entries) > 0 {
		t.Errorf("container state left: %d entries", len(entries))
	}
}

func TestNetworkNone(t *testing.T) {
	e := newEnv(t)
	r := e.run(context.Background(), engine.Spec{Process: sh("ls /sys/class/net; ip -o link | grep -c UP"), Network: engine.NetworkNone})
	if r.stdout != "lo\n1\n" {
		t.Errorf("interfaces with network none: %q (stderr %q), want only lo, up", r.stdout, r.stderr)
	}
}

func TestNetworkHostReachesLoopback(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the host")
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	r := e.run(context.Background(), engine.Spec{Process: sh("wget -q -O- " + url), Network: engine.NetworkHost})
	if r.stdout != "hello from the host" {
		t.Errorf("host network: %q (stderr %q)", r.stdout, r.stderr)
	}
	r = e.run(context.Background(), engine.Spec{Process: sh("wget -q -T 2 -O- " + url), Network: engine.NetworkNone})
	if r.status.Code == 0 {
		t.Errorf("network none reached the host's loopback: %q", r.stdout)
	}
}

func TestEscapesFail(t *testing.T) { checkEscapesFail(t, newEnv(t)) }

// checkEscapesFail tries escapes from a container of e's runtime.
func checkEscapesFail(t *testing.T, e *env) {
	t.Helper()
	hostDir := t.TempDir()
	target := filepath.Join(hostDir, "escaped")
	// Each line must fail (or stay inside the container): it prints
	// "ESCAPED" only if it did not.
	script := fmt.Sprintf(`
echo x > /proc/1/root%[1]s 2>/dev/null; test -e %[1]s && echo ESCAPED root-write-stays-inside
echo x > /../../../..%[1]s 2>/dev/null
mount -t tmpfs none /mnt 2>/dev/null && echo ESCAPED mount
mount -o remount,rw /proc/sys 2>/dev/null && echo ESCAPED remount
head -c 64 /dev/zero > /tmp/mod.ko; insmod /tmp/mod.ko 2>/dev/null && echo ESCAPED insmod
mknod /tmp/blk b 7 0 2>/dev/null && echo ESCAPED mknod-block
mknod /tmp/chr c 1 3 || echo mknod-char-failed
echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo ESCAPED proc-sys
echo 1 > /proc/sysrq-trigger 2>/dev/null && echo ESCAPED sysrq
cat /proc/kcore 2>/dev/null | head -c 1 | grep -q . && echo ESCAPED kcore
touch /sys/kernel/x 2>/dev/null && echo ESCAPED sysfs
unshare -U true 2>/dev/null && echo ESCAPED unshare-user-namespace
unshare -m true 2>/dev/null && echo ESCAPED unshare-mount-namespace
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
`, target)
	r := e.run(context.Background(), engine.Spec{Process: sh(script)})
	if strings.Contains(r.stdout, "ESCAPED") || strings.Contains(r.stdout, "failed") {
		t.Errorf("escape attempts:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	if _, err := os.Stat(target); err == nil {
		t.Errorf("the container wrote %s on the host", target)
	}
	// Docker's default set less CAP_NET_RAW (bit 13): 0x00000000a80405fb.
	for _, want := range []string{"CapEff:\t00000000a80405fb", "CapBnd:\t00000000a80405fb", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	// A non-root user has no effective capabilities.
	p := sh("grep CapEff /proc/self/status")
	p.User = "nobody"
	if r := e.run(context.Background(), engine.Spec{Process: p}); !strings.Contains(r.stdout, "CapEff:\t0000000000000000") {
		t.Errorf("nobody's capabilities: %q", r.stdout)
	}
}

func TestForkBombIsContained(t *testing.T) {
	e := newEnv(t)
	done := make(chan result, 1)
	go func() {
		done <- e.run(context.Background(), engine.Spec{
			Process: sh("while true; do sleep 60 & done"),
			Limits:  engine.Limits{Pids: 64},
			Timeout: 3 * time.Second,
		})
	}()
	// While it runs, the host still starts processes promptly.
	time.Sleep(time.Second)
	start := time.Now()
	if err := exec.Command("true").Run(); err != nil {
		t.Errorf("the host could not start a process: %v", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("starting a process on the host took %v during the fork bomb", took)
	}
	// Sample the container's process count while the bomb runs.
	for i := 0; i < 10; i++ {
		names, _ := e.rt.cgroups.List()
		for _, n := range names {
			if cg, err := e.rt.cgroups.Open(n); err == nil {
				if procs, _ := cg.Procs(); len(procs) > 64 {
					t.Errorf("the container has %d processes, over its limit of 64", len(procs))
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// busybox sh gives up when fork fails; either way the bomb ends.
	r := <-done
	if r.status.Code == 0 {
		t.Errorf("status %+v: the fork bomb did not fail", r.status)
	}
	if !strings.Contains(r.stderr, "can't fork") && !r.status.TimedOut {
		t.Errorf("stderr %q: want fork failures", r.stderr)
	}
}

func TestMemoryHogIsKilled(t *testing.T) {
	e := newEnv(t)
	// busybox tail keeps all of a file without newlines in memory.
	r := e.run(context.Background(), engine.Spec{
		Process: engine.Process{Args: []string{"tail", "/dev/zero"}},
		Limits:  engine.Limits{Memory: 32 << 20},
		Timeout: 60 * time.Second,
	})
	if !r.status.OOMKilled || r.status.Code != 137 {
		t.Fatalf("status %+v stderr %q: want PID 1 killed for memory", r.status, r.stderr)
	}
	if err := r.status.Err(); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("message %v does not say out of memory", err)
	}
}

// TestThreadExitsDoNotKillContainers runs containers while other
// goroutines lock OS threads and end locked, which makes the Go runtime
// end those threads, as Mounted and the snapshotter's private mount
// namespaces do. The init's parent-death signal fires when the thread
// that forked it ends (golang/go#27505), so a container forked from a
// thread that later ends would die with SIGKILL: none may.
func TestThreadExitsDoNotKillContainers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan struct{})
				go func() {
					runtime.LockOSThread() // never unlocked: the thread ends
					close(done)
				}()
				<-done
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	type outcome struct {
		r   result
		err error
	}
	results := make(chan outcome, 6)
	for range cap(results) {
		go func() {
			r, err := e.tryRun(ctx, engine.Spec{Process: sh("sleep 0.5")})
			results <- outcome{r, err}
		}()
	}
	for range cap(results) {
		o := <-results
		if o.err != nil {
			t.Error(o.err)
		} else if o.r.status.Code != 0 {
			t.Errorf("a container ended with %+v while threads ended: want exit 0", o.r.status)
		}
	}
}
