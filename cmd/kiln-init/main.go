package main

import (
	"fmt"
	"os"

	"github.com/kiln-build/kiln/engine/container"
)

func main() {
	if container.Main() {
		return
	}
	fmt.Fprintln(os.Stderr, "kiln-init: kiln starts this program as a container's init; it is not run by hand")
	os.Exit(2)
}
