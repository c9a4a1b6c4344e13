// Command probe calls each system call given as NUMBER:NAME with zero
// arguments and prints "NAME ERRNO" (0 when it succeeded). The seccomp
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
		num, name, _ := strings.Cut(a, ":")
		n, err := strconv.Atoi(num)
		if err != nil {
			fmt.Println(name, "bad-number")
			continue
		}
		_, _, e := syscall.RawSyscall6(uintptr(n), 0, 0, 0, 0, 0, 0)
		fmt.Println(name, int(e))
	}
}
