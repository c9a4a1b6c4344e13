package cgroup

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestV1Mounts(t *testing.T) {
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	systemd := `25 18 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory
30 25 0:27 /docker/abc /sys/fs/cgroup/pids rw,nosuid shared:13 master:2 - cgroup cgroup rw,pids
31 25 0:27 / /mnt/other\040pids rw - cgroup cgroup rw,pids
`
	for _, tc := range []struct {
		name  string
		info  string
		under string
		want  map[string]string
	}{
		{"hybrid", hybrid, "/sys/fs/cgroup", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu", "memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices",
			"freezer": "/sys/fs/cgroup/freezer", "pids": "/sys/fs/cgroup/pids",
		}},
		{"co-mounted, optional fields, other mounts ignored", systemd, "/sys/fs/cgroup", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids",
		}},
		{"escaped mountpoint", systemd, "/mnt", map[string]string{"pids": "/mnt/other pids"}},
		{"nothing under", hybrid, "/sys/fs/cgroup/unified", map[string]string{}},
		{"prefix is not a parent", hybrid, "/sys/fs/cgroup/pi", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v1Mounts(strings.NewReader(tc.info), tc.under)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("v1Mounts (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := v1Mounts(strings.NewReader("1 2 3\n"), "/"); err == nil {
		t.Error("v1Mounts of a malformed line succeeded, want an error")
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Option
		wantErr bool
	}{
		{"relative mountpoint", WithMountpoint("sys/fs/cgroup"), true},
		{"mountpoint", WithMountpoint("/sys/fs/cgroup/"), false},
		{"empty parent", WithParent(""), true},
		{"absolute parent", WithParent("/kiln"), true},
		{"escaping parent", WithParent("../kiln"), true},
		{"unclean parent", WithParent("a//b"), true},
		{"dot parent", WithParent("."), true},
		{"nested parent", WithParent("system.slice/kiln"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newOptions([]Option{tc.opt})
			if (err != nil) != tc.wantErr {
				t.Errorf("got error %v, want error: %v", err, tc.wantErr)
			}
		})
	}
	if _, err := NewManager(WithMountpoint("/nonexistent-cgroup-mount")); err == nil {
		t.Error("NewManager on a missing mountpoint succeeded")
	}
	if _, err := NewManager(WithMountpoint(t.TempDir())); err == nil {
		t.Error("NewManager on a directory with no cgroups succeeded")
	}
}
