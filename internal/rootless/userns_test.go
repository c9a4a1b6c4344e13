package rootless

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRanges(t *testing.T) {
	file := "# comment\nalice:100000:65536\n1001:200000:10\nbob:300000:65536\n\nalice:400000:5\n"
	for _, tc := range []struct {
		name string
		id   int
		want []Range
	}{
		{"alice", 1000, []Range{{100000, 65536}, {400000, 5}}},
		{"carol", 1001, []Range{{200000, 10}}},
		{"dave", 1002, nil},
	} {
		got, err := Ranges(strings.NewReader(file), tc.name, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s: (-want +got)\n%s", tc.name, d)
		}
	}
	for _, bad := range []string{"alice:1:2:3\n", "alice:x:5\n", "alice:5:0\n"} {
		if _, err := Ranges(strings.NewReader(bad), "alice", 1000); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMapArgs(t *testing.T) {
	for _, tc := range []struct {
		ranges   []Range
		want     string
		complete bool
	}{
		{nil, "0 1000 1", false},
		{[]Range{{100000, 65536}}, "0 1000 1 1 100000 65535", true},
		{[]Range{{100000, 100}, {200000, 65536}}, "0 1000 1 1 100000 100 101 200000 65435", true},
		{[]Range{{100000, 10}}, "0 1000 1 1 100000 10", false},
	} {
		args, complete := mapArgs(1000, tc.ranges)
		if got := strings.Join(args, " "); got != tc.want || complete != tc.complete {
			t.Errorf("%v: got %q %v, want %q %v", tc.ranges, got, complete, tc.want, tc.complete)
		}
	}
}

func TestOverlayOptions(t *testing.T) {
	const root = "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off,redirect_dir=off,metacopy=off"
	if got := overlayOptions(root, false); got != root {
		t.Errorf("as root: %q", got)
	}
	want := "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off,redirect_dir=nofollow,metacopy=off,userxattr"
	if got := overlayOptions(root, true); got != want {
		t.Errorf("in a user namespace: %q, want %q", got, want)
	}
	if got := overlayOptions("ro,lowerdir=/a,userxattr", true); got != "ro,lowerdir=/a,userxattr" {
		t.Errorf("userxattr twice: %q", got)
	}
}

func TestIsInitial(t *testing.T) {
	for m, want := range map[string]bool{
		"         0          0 4294967295\n": true,
		"         0       1000          1\n": false,
		"0 1000 1\n1 100000 65535\n":         false,
	} {
		if got := isInitial(m); got != want {
			t.Errorf("%q: %v", m, got)
		}
	}
}

func TestMapped(t *testing.T) {
	const m = "0 1000 1\n1 100000 65535\n"
	for id, want := range map[int]bool{0: true, 1: true, 5: true, 65535: true, 65536: false, -1: false} {
		if got := mapped(m, id); got != want {
			t.Errorf("%d: %v", id, got)
		}
	}
	if mapped("0 1000 1\n", 5) {
		t.Error("5 mapped by a map of 0 alone")
	}
}
