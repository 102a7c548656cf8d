//go:build unix

package runlock

import (
	"errors"
	"os"
	"syscall"
)

// pidExists reports whether a process with this pid exists (EPERM: it
// does, under another user).
func pidExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// linkCount returns a file's number of hard links.
func linkCount(st os.FileInfo) (uint64, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(sys.Nlink), true
}
