//go:build !linux

package userns

// Rootless reports false: rootless kiln runs only on Linux.
func Rootless() bool { return false }

// Enter does nothing: rootless kiln runs only on Linux.
func Enter(warn func(string)) (done bool, code int, err error) { return false, 0, nil }
