package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadInRoot reads files of a root: regular files, also through links that
// stay inside it; links that lead out resolve inside the root; FIFOs,
// sockets, directories and oversized files are refused at once, naming
// the file.
func TestReadInRoot(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "shadow"), []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "etc", "inside")))
	must(os.Symlink(filepath.Join(host, "shadow"), filepath.Join(root, "etc", "outside")))
	must(os.Symlink("../../../../../../.."+filepath.Join(host, "shadow"), filepath.Join(root, "etc", "dotdot")))
	must(syscall.Mkfifo(filepath.Join(root, "etc", "fifo"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc", "big"), make([]byte, 100), 0o644))
	for _, tc := range []struct {
		name, want, err string
	}{
		{name: "/etc/passwd", want: "root:x:0:0::/:/bin/sh\n"},
		{name: "etc/inside", want: "root:x:0:0::/:/bin/sh\n"},
		{name: "/etc/outside", err: "no such file"},
		{name: "/etc/dotdot", err: "no such file"},
		{name: "/etc/fifo", err: "/etc/fifo is a named pipe"},
		{name: "/etc", err: "/etc is a directory"},
		{name: "/etc/big", err: "/etc/big is larger than 64 bytes"},
		{name: "/proc/self/root/etc/passwd", err: "no such file"},
	} {
		t.Run(strings.ReplaceAll(tc.name, "/", "_"), func(t *testing.T) {
			done := make(chan struct{})
			var got []byte
			var err error
			go func() {
				got, err = ReadInRoot(root, tc.name, 64)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("Read(%s) still waits after 5 s", tc.name)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Read(%s) = %q, %v; want an error with %q", tc.name, got, err, tc.err)
				}
				if strings.Contains(err.Error(), "host secret") {
					t.Errorf("the error shows the host file: %v", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("Read(%s) = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		})
	}
	_, err := ReadInRoot(root, "/etc/fifo", 64)
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("a FIFO: %v, want ErrNotRegular", err)
	}
}
