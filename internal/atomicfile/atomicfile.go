package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write writes data to path, atomically and durably: into a temp file
// that create makes, which is synced, given perm and renamed over path,
// then path's directory is synced. create must make its file on path's
// file system; nil makes ".BASE.tmp-*" beside path. Callers whose
// directories are swept after a crash pass a create that names the file
// the way their sweep recognizes. The temp file is removed on failure.
func Write(path string, data []byte, perm os.FileMode, create func() (*os.File, error)) error {
	return WriteWith(path, perm, create, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteWith is Write for content that write streams.
func WriteWith(path string, perm os.FileMode, create func() (*os.File, error), write func(io.Writer) error) error {
	if create == nil {
		create = func() (*os.File, error) {
			return os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
		}
	}
	f, err := create()
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making a rename into it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
