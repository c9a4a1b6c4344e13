// Package rootfile reads a file of a root filesystem that kiln does not
// trust (an image's /etc/passwd, /etc/group) from the host: the path is
// resolved inside the root, as if it were /, and only a regular file is
// ever opened for reading, so that a symlink cannot lead out of the root
// and a FIFO, socket or device can neither block kiln nor be touched.
package rootfile
