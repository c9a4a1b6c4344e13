//go:build !linux

package layer

func adviseSequential(fd int) {}
