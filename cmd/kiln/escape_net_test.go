package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEscapeSniffer runs a packet sniffer in a build step on the default
// (host) network while the test sends UDP datagrams to a loopback port of
// its own: the step cannot open an AF_PACKET raw socket (no CAP_NET_RAW),
// so it reads none of the host's traffic.
func TestEscapeSniffer(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, nil)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "sniffer"), "./testdata/sniffer")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the sniffer: %v\n%s", err, out)
	}
	marker := fmt.Sprintf("kiln-sniff-%d-%d", os.Getpid(), time.Now().UnixNano())
	manifest := "from: busybox\nsteps:\n  - copy: {src: sniffer, dst: /sniffer}\n  - run: /sniffer " + marker + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}

	// A host service on loopback, and traffic to it while the step runs.
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = conn.Write([]byte("secret " + marker))
			}
		}
	}()
	r := kiln(t, root, nil, "build", dir)
	close(stop)
	<-done

	if r.code != 0 || !strings.Contains(r.stderr, "no raw socket: operation not permitted") {
		t.Errorf("the sniffer step: exit %d; want 0 and \"no raw socket: operation not permitted\"\nstderr: %s", r.code, r.stderr)
	}
}
