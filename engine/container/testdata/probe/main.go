// Command probe calls each system call given as NUMBER:NAME[:ARG0] with
// zero arguments (or ARG0 as the first) and prints "NAME ERRNO" (0 when
// it succeeded). The seccomp
// test runs it in a container; it is built by the test, statically.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	for _, a := range os.Args[1:] {
		parts := strings.Split(a, ":")
		n, err := strconv.Atoi(parts[0])
		if err != nil || len(parts) < 2 {
			fmt.Println(a, "bad-argument")
			continue
		}
		var arg0 uint64
		if len(parts) > 2 {
			arg0, _ = strconv.ParseUint(parts[2], 0, 64)
		}
		r, _, e := syscall.RawSyscall6(uintptr(n), uintptr(arg0), 0, 0, 0, 0, 0)
		if r == 0 && e == 0 && parts[1] == "clone-newuser" {
			os.Exit(0) // the child of a clone that was let through
		}
		fmt.Println(parts[1], int(e))
	}
}
