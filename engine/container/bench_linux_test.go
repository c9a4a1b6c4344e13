package container

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/engine/snapshot"
)

// timings collects per-iteration times and reports their median, which
// is steadier than the mean on a shared machine.
type timings []time.Duration

func (ts timings) report(b *testing.B) {
	if len(ts) == 0 {
		return
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	b.ReportMetric(float64(ts[len(ts)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(ts[len(ts)*9/10].Microseconds())/1000, "ms-p90")
}

// BenchmarkRunTrue measures kiln's whole container life for /bin/true:
// prepare an overlay snapshot over the busybox layer, create the
// container (namespaces, mounts, cgroup, pivot_root), run, wait, delete
// the container and remove the snapshot. Compare it with runc and crun
// in the same run: go test -bench 'True' ./container/
//
// The "kiln-init" case re-executes a static build of cmd/kiln-init, as
// the kiln command does when make build put it next to kiln; "kiln" one
// of cmd/kiln, as it does without; "test-binary" re-executes this
// (larger, dynamically linked) test binary.
func BenchmarkRunTrue(b *testing.B) {
	enginetest.RequireRoot(b)
	init := buildKiln(b, "kiln-init")
	b.Run("kiln-init", func(b *testing.B) { benchRunTrue(b, WithInit(init)) })
	kiln := buildKiln(b, "kiln")
	b.Run("kiln", func(b *testing.B) { benchRunTrue(b, WithInit(kiln)) })
	b.Run("test-binary", func(b *testing.B) { benchRunTrue(b) })
}

// buildKiln builds cmd/NAME as a static binary, as make build does.
func buildKiln(b *testing.B, name string) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = enginetest.RepoRoot(b)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Skipf("skipping: cannot build kiln: %v\n%s", err, msg)
	}
	return out
}

func benchRunTrue(b *testing.B, opts ...Option) {
	ctx := context.Background()
	root := b.TempDir()
	parent := fmt.Sprintf("kiln-bench-%d", os.Getpid())
	opts = append(opts, WithCgroupParent(parent))
	b.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	rt, err := New(ctx, filepath.Join(root, "containers"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	sn, _, err := snapshot.New(ctx, filepath.Join(root, "snapshots"), snapshot.Overlayfs)
	if err != nil {
		b.Fatal(err)
	}
	lower := enginetest.Busybox(b)
	var ts timings
	before := usage(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		id := fmt.Sprintf("b%d", i)
		mounts, err := sn.Prepare(ctx, id, []string{lower})
		if err != nil {
			b.Fatal(err)
		}
		c, err := rt.Create(ctx, engine.Spec{ID: id, Rootfs: mounts, Process: engine.Process{Args: []string{"/bin/true"}}})
		if err != nil {
			b.Fatal(err)
		}
		st, err := c.Wait(ctx)
		if err != nil || st.Code != 0 {
			b.Fatalf("status %+v, %v", st, err)
		}
		if err := c.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		if err := sn.Remove(ctx, id); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, time.Since(start))
	}
	b.StopTimer()
	ts.report(b)
	usage(b).since(before).report(b)
}

// rusage is the CPU time and page faults of this process and of its
// reaped children: on a loaded machine, steadier than wall time.
type rusage struct {
	cpu    time.Duration
	faults int64
	n      int
}

func usage(b *testing.B) rusage {
	var self, children unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &children); err != nil {
		b.Fatal(err)
	}
	d := func(t unix.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return rusage{
		cpu:    d(self.Utime) + d(self.Stime) + d(children.Utime) + d(children.Stime),
		faults: self.Minflt + self.Majflt + children.Minflt + children.Majflt,
		n:      b.N,
	}
}

func (u rusage) since(before rusage) rusage {
	return rusage{cpu: u.cpu - before.cpu, faults: u.faults - before.faults, n: u.n}
}

// report adds the CPU time and page faults per iteration.
func (u rusage) report(b *testing.B) {
	b.ReportMetric(float64(u.cpu.Microseconds())/1000/float64(u.n), "cpu-ms/op")
	b.ReportMetric(float64(u.faults)/float64(u.n), "faults/op")
}

// bundle makes an OCI runtime bundle of the busybox rootfs running
// /bin/true, like ../shared/bench/setup.sh does.
func bundle(b *testing.B, runtime string) string {
	b.Helper()
	if _, err := exec.LookPath(runtime); err != nil {
		b.Skipf("skipping: %s is not installed", runtime)
	}
	dir := b.TempDir()
	rootfs := enginetest.Busybox(b)
	if err := os.Rename(rootfs, filepath.Join(dir, "rootfs")); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v: %s", err, out)
	}
	p := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["args"] = []string{"/bin/true"}
	proc["terminal"] = false
	spec["root"].(map[string]any)["readonly"] = true
	spec["hostname"] = "bench"
	raw, _ = json.Marshal(spec)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchRuntime runs `RUNTIME --root STATE run -b BUNDLE ID` per
// iteration. With hideCgroup2, the command runs from an OS thread in a
// mount namespace without the hybrid cgroup2 mount, which crun refuses
// (the workaround of ../shared/bench/README.md, without its extra
// unshare and shell processes).
func benchRuntime(b *testing.B, name string, hideCgroup2 bool) {
	enginetest.RequireRoot(b)
	dir := bundle(b, name)
	state := b.TempDir()
	errc := make(chan error, 1)
	var ts timings
	go func() {
		runtime.LockOSThread() // never unlocked when the namespace changes
		if hideCgroup2 {
			if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
				errc <- err
				return
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				errc <- err
				return
			}
			_ = unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			out, err := exec.Command(name, "--root", state, "run", "-b", dir, fmt.Sprintf("bench-%d-%d", os.Getpid(), i)).CombinedOutput()
			if err != nil {
				errc <- fmt.Errorf("%s run: %v: %s", name, err, out)
				return
			}
			ts = append(ts, time.Since(start))
		}
		b.StopTimer()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	ts.report(b)
}

func BenchmarkRuncTrue(b *testing.B) { benchRuntime(b, "runc", false) }
func BenchmarkCrunTrue(b *testing.B) { benchRuntime(b, "crun", true) }
