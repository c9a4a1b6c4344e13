package rootless

// Holder is what a kiln built with package nsjoin's constructor knows,
// at its start, of its user's namespace holder: a sleeping process that
// keeps the user namespace (and its id maps) alive between commands, so
// that each command joins it instead of making one, as rootless Podman's
// pause process does. The zero Holder is a kiln without the constructor.
type Holder struct {
	// Available is true when the constructor is built in: only then is a
	// holder worth making.
	Available bool
	// Path is the holder file ("PID INODE", the holder's pid and the
	// inode of its user namespace), for the user that started kiln;
	// empty for root.
	Path string
	// Joined is true when the constructor entered the holder's user
	// namespace and a new mount namespace.
	Joined bool
	// Err is why joining failed after the holder file was found valid.
	Err error
}
