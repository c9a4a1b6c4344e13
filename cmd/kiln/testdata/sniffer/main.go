// Command sniffer is the attacker of TestEscapeSniffer: run in a
// container, it opens an AF_PACKET raw socket and reads the host's
// packets until one carries the marker given as its argument.
//
// It prints what happened and exits 0 when it could not open the socket
// (EPERM), 1 when it sniffed the marker, 2 on any other outcome.
package main

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Println("usage: sniffer MARKER")
		os.Exit(2)
	}
	marker := []byte(os.Args[1])
	const ethPAll = 0x0300 // htons(ETH_P_ALL)
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, ethPAll)
	if err == syscall.EPERM {
		fmt.Println("no raw socket:", err)
		os.Exit(0)
	}
	if err != nil {
		fmt.Println("socket:", err)
		os.Exit(2)
	}
	tv := syscall.Timeval{Usec: 100000}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		fmt.Println("setsockopt:", err)
		os.Exit(2)
	}
	buf := make([]byte, 65536)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		if bytes.Contains(buf[:n], marker) {
			fmt.Println("sniffed a host packet carrying the marker")
			os.Exit(1)
		}
	}
	fmt.Println("raw socket opened, but no packet carried the marker")
	os.Exit(2)
}
