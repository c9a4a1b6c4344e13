package container

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/idrange"
)

// newUsernsEnv is newEnv with containers in user namespaces of their own,
// on ranges of an allocator that locks its slots in a directory of the
// test's.
func newUsernsEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	a, err := idrange.New(idrange.WithLockDir(filepath.Join(e.root, "userns")))
	if err != nil {
		t.Fatal(err)
	}
	if e.rt, err = New(context.Background(), filepath.Join(e.root, "containers"), WithCgroupParent(e.parent), WithUserNS(a)); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestUserNSIdentity: in a user namespace a step is root, on a uid map
// that is not the identity, and what it makes as root or chowns to 1000
// lands in the writable layer as 0 and 1000.
func TestUserNSIdentity(t *testing.T) {
	e := newUsernsEnv(t)
	r := e.run(context.Background(), engine.Spec{Process: sh(`id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map
echo r > /byroot; echo u > /by1000; chown 1000:1000 /by1000; rm /bin/true; mkdir -p /tmp/x`)})
	if r.status.Code != 0 {
		t.Fatalf("exit %d: %s", r.status.Code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || lines[0] != "0" || lines[1] != "0" {
		t.Fatalf("want uid 0, gid 0 and two maps, got:\n%s", r.stdout)
	}
	for _, m := range lines[2:] {
		f := strings.Fields(m)
		if len(f) != 3 || f[0] != "0" || f[1] == "0" || f[2] != "65536" {
			t.Errorf("map %q: want 0 -> a host range other than 0, 65536 ids", m)
		}
	}
	upper, err := e.sn.(engine.Committer).Writable(context.Background(), r.key)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"byroot": 0, "by1000": 1000} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != want || st.Gid != want {
			t.Errorf("%s is %d:%d in the layer, want %d:%d", name, st.Uid, st.Gid, want, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "bin/true"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("rm /bin/true left no whiteout in the layer (%v, mode %o)", err, st.Mode)
	}
}

// TestUserNSHostFile: a step that gets hold of a host directory (here
// bound into its mount namespace from outside, as an escape would) cannot
// write a root-owned file there under a user namespace; without one it
// can, as root.
func TestUserNSHostFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		userns bool
		want   string
	}{
		{"userns", true, "denied"},
		{"host", false, "wrote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			if tc.userns {
				e = newUsernsEnv(t)
			} else {
				e = newEnv(t)
			}
			host := t.TempDir()
			if err := os.Chmod(host, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(host, "f")
			if err := os.WriteFile(file, []byte("host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			mounts, err := e.sn.Prepare(ctx, "hostfile", []string{e.lower})
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			p := sh(`while [ ! -e /tmp/f ]; do sleep 0.05; done
if echo escaped >> /tmp/f; then echo wrote; else echo denied; fi
if touch /tmp/new; then echo wrote; else echo denied; fi`)
			p.Stdout, p.Stderr = &out, &out
			c, err := e.rt.Create(ctx, engine.Spec{ID: "hostfile", Rootfs: mounts, Process: p})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Delete(context.Background())
			// From a process of its own: the thread that enters the
			// container's mount namespace may be the main thread, which
			// Go never ends, and the test's own view of mounts with it.
			helper := exec.Command(os.Args[0], "-test.run=^TestHelperBindInto$")
			helper.Env = append(os.Environ(), "KILN_TEST_BIND="+strconv.Itoa(c.Pid())+":"+host+":/tmp")
			if out, err := helper.CombinedOutput(); err != nil || !strings.Contains(string(out), "bound") {
				t.Fatalf("binding %s into the container: %v\n%s", host, err, out)
			}
			if _, err := c.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			got := 0
			for _, l := range strings.Split(out.String(), "\n") {
				if l == tc.want {
					got++
				}
			}
			if got != 2 {
				t.Errorf("want both writes %s, got:\n%s", tc.want, out.String())
			}
			b, _ := os.ReadFile(file)
			if escaped := strings.Contains(string(b), "escaped"); escaped != (tc.want == "wrote") {
				t.Errorf("host file holds %q", b)
			}
		})
	}
}

// TestHelperBindInto is TestUserNSHostFile's helper process: with
// KILN_TEST_BIND=PID:DIR:TARGET it binds DIR on TARGET in the mount
// namespace of PID.
func TestHelperBindInto(t *testing.T) {
	v := os.Getenv("KILN_TEST_BIND")
	if v == "" {
		t.Skip("skipping: the helper process of TestUserNSHostFile, run by it")
	}
	f := strings.SplitN(v, ":", 3)
	pid, err := strconv.Atoi(f[0])
	if err != nil || len(f) != 3 {
		t.Fatalf("KILN_TEST_BIND=%q: want PID:DIR:TARGET", v)
	}
	if err := bindInto(pid, f[1], f[2]); err != nil {
		t.Fatal(err)
	}
	fmt.Println("bound")
}

// bindInto binds the host directory dir on target in the mount namespace
// of process pid, from a thread that ends afterwards.
func bindInto(pid int, dir, target string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with its namespace
		errc <- func() error {
			tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err != nil {
				return err
			}
			defer unix.Close(tree)
			ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(ns)
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return err
			}
			if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("entering the container's mount namespace: %w", err)
			}
			return unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
		}()
	}()
	return <-errc
}
