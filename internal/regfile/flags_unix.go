//go:build unix

package regfile

import "syscall"

const (
	// nonBlock opens a FIFO without waiting for a writer.
	nonBlock = syscall.O_NONBLOCK
	// noFollow refuses a symbolic link as the last element of a path.
	noFollow = syscall.O_NOFOLLOW
)
