//go:build !linux

package rootless

// Active reports false: rootless kiln runs only on Linux.
func Active() bool { return false }

// Enter does nothing: rootless kiln runs only on Linux.
func Enter(warn func(string), h Holder) (done bool, code int, err error) { return false, 0, nil }
