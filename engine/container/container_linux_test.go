package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/engine/snapshot"
	"github.com/kiln-build/kiln/image/layer"
)

func TestMain(m *testing.M) {
	if Main() {
		return
	}
	os.Exit(m.Run())
}

// env is a runtime and an overlay snapshotter over a busybox layer, in
// temp directories, with a cgroup parent of its own.
type env struct {
	t      *testing.T
	rt     *Runtime
	sn     engine.Snapshotter
	lower  string
	root   string
	parent string
	n      atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	enginetest.RequireRoot(t)
	root := t.TempDir()
	parent := fmt.Sprintf("kiln-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	rt, err := New(context.Background(), filepath.Join(root, "containers"), WithCgroupParent(parent))
	if err != nil {
		t.Fatal(err)
	}
	sn, _, err := snapshot.New(context.Background(), filepath.Join(root, "snapshots"), snapshot.Overlayfs)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, rt: rt, sn: sn, lower: enginetest.Busybox(t), root: root, parent: parent}
	t.Cleanup(func() {
		// Nothing of a test's containers may remain.
		if names, err := rt.cgroups.List(); err == nil && len(names) > 0 {
			t.Errorf("cgroups left behind: %v", names)
		}
		for _, ctrl := range []string{"pids", "memory", "cpu", "devices", "freezer"} {
			os.Remove(filepath.Join("/sys/fs/cgroup", ctrl, parent))
		}
		os.Remove(filepath.Join("/sys/fs/cgroup/unified", parent))
		if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(root)) {
			t.Errorf("mounts left behind under %s:\n%s", root, grepLines(string(b), root))
		}
	})
	return e
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// result is what a container run gave.
type result struct {
	status engine.Status
	stdout string
	stderr string
	key    string
}

// run runs spec (filling in ID and Rootfs) on a fresh snapshot, returns
// what happened, and removes the container; the snapshot stays until
// the test ends.
func (e *env) run(ctx context.Context, spec engine.Spec) result {
	e.t.Helper()
	r, err := e.tryRun(ctx, spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) tryRun(ctx context.Context, spec engine.Spec) (result, error) {
	key := fmt.Sprintf("c%d", e.n.Add(1))
	mounts, err := e.sn.Prepare(ctx, key, []string{e.lower})
	if err != nil {
		return result{}, err
	}
	var stdout, stderr bytes.Buffer
	spec.ID, spec.Rootfs = key, mounts
	spec.Process.Stdout, spec.Process.Stderr = &stdout, &stderr
	c, err := e.rt.Create(ctx, spec)
	if err != nil {
		return result{key: key}, err
	}
	st, err := c.Wait(ctx)
	if derr := c.Delete(context.Background()); derr != nil && err == nil {
		err = derr
	}
	return result{status: st, stdout: stdout.String(), stderr: stderr.String(), key: key}, err
}

func sh(script string) engine.Process {
	return engine.Process{Args: []string{"/bin/sh", "-c", script}}
}

func TestIsolation(t *testing.T) {
	e := newEnv(t)
	marker, err := os.CreateTemp("", "kiln-host-marker-")
	if err != nil {
		t.Fatal(err)
	}
	marker.Close()
	defer os.Remove(marker.Name())

	p := sh(`test -e ` + marker.Name() + ` && echo marker=visible || echo marker=hidden
echo pid=$$
echo host=$(hostname)
echo env=$GREETING
echo pwd=$(pwd)
echo id=$(id -u):$(id -g)
ls /
`)
	p.Env = []string{"GREETING=hello world"}
	p.Cwd = "/work/dir"
	p.User = "65534:65534"
	r := e.run(context.Background(), engine.Spec{Process: p, Hostname: "kiln-box"})
	want := "marker=hidden\npid=1\nhost=kiln-box\nenv=hello world\npwd=/work/dir\nid=65534:65534\n" +
		"bin\ndev\netc\nproc\nroot\nsbin\nsys\ntmp\nwork\n"
	if diff := cmp.Diff(want, r.stdout); diff != "" || r.status.Code != 0 {
		t.Errorf("exit %d, stderr %q, stdout (-want +got):\n%s", r.status.Code, r.stderr, diff)
	}
}

func TestUserByName(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ user, want string }{
		{"", "0:0"}, {"root", "0:0"}, {"nobody", "65534:65534"}, {"1234", "1234:0"}, {"nobody:root", "65534:0"},
	} {
		p := sh(`echo $(id -u):$(id -g)`)
		p.User = tc.user
		r := e.run(context.Background(), engine.Spec{Process: p})
		if got := strings.TrimSpace(r.stdout); got != tc.want {
			t.Errorf("user %q: id %q (stderr %q), want %q", tc.user, got, r.stderr, tc.want)
		}
	}
	p := sh("true")
	p.User = "nosuchuser"
	if _, err := e.tryRun(context.Background(), engine.Spec{Process: p}); err == nil || !strings.Contains(err.Error(), "nosuchuser") {
		t.Errorf("unknown user: error %v, want one naming the user", err)
	}
}

func TestMissingCommand(t *testing.T) {
	e := newEnv(t)
	_, err := e.tryRun(context.Background(), engine.Spec{Process: engine.Process{Args: []string{"no-such-command"}}})
	if err == nil || !strings.Contains(err.Error(), `"no-such-command" not found`) {
		t.Fatalf("error %v, want command not found", err)
	}
}

func TestWritesOnlyReachTheSnapshot(t *testing.T) {
	e := newEnv(t)
	before := enginetest.Tree(t, e.lower)
	r := e.run(context.Background(), engine.Spec{Process: sh(`echo new > /new; echo changed > /etc/passwd; rm /bin/ls; rm -rf /tmp; chmod 700 /etc`)})
	if r.status.Code != 0 {
		t.Fatalf("exit %d: %s", r.status.Code, r.stderr)
	}
	if diff := cmp.Diff(before, enginetest.Tree(t, e.lower)); diff != "" {
		t.Errorf("the lower layer changed (-before +after):\n%s", diff)
	}
	mounts, _ := e.sn.Mounts(context.Background(), r.key)
	upper, _ := engine.Writable(mounts)
	if b, err := os.ReadFile(filepath.Join(upper, "new")); err != nil || string(b) != "new\n" {
		t.Errorf("upperdir/new = %q, %v", b, err)
	}
}

// TestDiffAppliesOnParent checks the engine's whole diff path: what a
// container did, as a layer, applied on its parent by
// go-containerregistry's mutate.Extract, gives exactly what the
// container saw.
func TestDiffAppliesOnParent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.run(ctx, engine.Spec{Process: sh(`set -e
mkdir -p /app/sub; echo hello > /app/sub/file; chmod 4750 /app/sub/file
echo changed >> /etc/group
rm /bin/vi /etc/passwd
rm -rf /root; echo a file now > /root
rm -rf /tmp; mkdir /tmp; touch /tmp/fresh
ln /app/sub/file /app/hardlink; ln -s sub/file /app/symlink
chown 1000:2000 /app/sub; mknod /app/fifo p
`)})
	if r.status.Code != 0 {
		t.Fatalf("exit %d: %s", r.status.Code, r.stderr)
	}
	mounts, err := e.sn.Mounts(ctx, r.key)
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]enginetest.Entry
	enginetest.Mounted(t, mounts, func(root string) { seen = enginetest.Tree(t, root) })

	var parent, diff bytes.Buffer
	if err := layer.WriteDir(ctx, &parent, e.lower); err != nil {
		t.Fatal(err)
	}
	if err := e.sn.Diff(ctx, r.key, &diff, engine.DiffOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".wh.vi", ".wh.passwd", ".wh..wh..opq"} {
		if !bytes.Contains(diff.Bytes(), []byte(want)) {
			t.Errorf("diff has no %s entry", want)
		}
	}
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, parent.Bytes()), tarLayer(t, diff.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := layer.Extract(ctx, rc, out); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(seen, enginetest.Tree(t, out)); d != "" {
		t.Errorf("parent + diff (mutate.Extract) differs from the container's view (-seen +got):\n%s", d)
	}
}

func tarLayer(t *testing.T, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSupplementaryGroups(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ user, want string }{
		{"", "0"}, {"nobody", "65534"}, {"1234:55", "55"},
	} {
		p := sh(`id -G`)
		p.User = tc.user
		if r := e.run(context.Background(), engine.Spec{Process: p}); strings.TrimSpace(r.stdout) != tc.want {
			t.Errorf("user %q: groups %q, want %q (the primary group, as Docker)", tc.user, r.stdout, tc.want)
		}
	}
}
