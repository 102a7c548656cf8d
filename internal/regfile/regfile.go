// Package regfile opens the files sincere reads and writes in place so that
// no input can hang or misdirect it: data is read from regular files only
// (a FIFO, a device or a folder is refused at once, without blocking on
// it), reads are bounded by the size a caller allows, and files appended to
// in place are opened without following symbolic links.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is wrapped by the error for a path that is not a regular
// file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens a regular file for reading and returns it with its size. A
// FIFO is opened without blocking and refused, as are devices and folders.
func Open(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, Kind(st.Mode()))
	}
	return f, st.Size(), nil
}

// Kind names a file's type for messages: "a FIFO", "a folder".
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// ReadAll reads a whole regular file of at most limit bytes; what names the
// kind of file in the error for a larger one.
func ReadAll(path, what string, limit int64) ([]byte, error) {
	f, size, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a %s may have", path, size, limit, what)
	}
	// The file may grow while it is read: never read past the limit.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than the %d bytes a %s may have", path, limit, what)
	}
	return b, nil
}

// OpenInPlace opens (creating it if need be) a file to be rewritten or
// appended to in place, read-write, refusing a symbolic link or anything but
// a regular file there: what is written never lands in another file.
func OpenInPlace(path string) (*os.File, error) {
	if noFollow == 0 { // no O_NOFOLLOW here: check first
		if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: is a symbolic link; sincere writes its own files only (remove the link)", path)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow|nonBlock, 0o644)
	if err != nil {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: is a symbolic link; sincere writes its own files only (remove the link)", path)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, Kind(st.Mode()))
	}
	return f, nil
}
