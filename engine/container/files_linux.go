package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
)

// stageFiles writes the content of the mounts that carry a File (secrets)
// to a tmpfs that the init mounts in its own, private mount namespace,
// and points each mount's Source at its file there: the host's disk
// never holds them, and the tmpfs goes away with the container's mount
// namespace, even if kiln is killed. Call it in the init, after making
// its mounts private and before binding the mounts.
//
// The tmpfs is mounted on a directory of the container's own (beside
// rootdir), which the runtime removes with the container; after
// pivot_root only the binds into the container keep the tmpfs.
//
// In a user namespace (made set) the runtime has made the directory, as
// the init cannot.
func stageFiles(rootdir string, mounts []engine.Mount, made bool) error {
	var size int64
	n := 0
	for _, m := range mounts {
		if m.File != nil {
			size += int64(len(m.File.Data)) + 4096
			n++
		}
	}
	if n == 0 {
		return nil
	}
	dir := filepath.Join(filepath.Dir(rootdir), "files")
	if err := os.Mkdir(dir, 0o700); err != nil && !(made && errors.Is(err, fs.ErrExist)) {
		return fmt.Errorf("making the directory of in-memory files: %w", err)
	}
	opts := "mode=0700,size=" + strconv.FormatInt(size+4096, 10) + ",nr_inodes=" + strconv.Itoa(n+16)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return &mountError{op: "mount tmpfs", source: "tmpfs", target: dir, data: opts, err: err}
	}
	for i := range mounts {
		f := mounts[i].File
		if f == nil {
			continue
		}
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := writeFile(p, f); err != nil {
			return fmt.Errorf("in-memory file for %s: %w", mounts[i].Target, err)
		}
		mounts[i].Source, mounts[i].File = p, nil
	}
	return nil
}

// writeFile creates p with f's content, mode and owner.
func writeFile(p string, f *engine.File) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	w := os.NewFile(uintptr(fd), p)
	defer w.Close()
	if _, err := w.Write(f.Data); err != nil {
		return err
	}
	if err := unix.Fchown(fd, f.UID, f.GID); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, uint32(f.Mode.Perm())); err != nil {
		return err
	}
	return w.Close()
}
