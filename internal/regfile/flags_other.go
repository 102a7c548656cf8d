//go:build !unix

package regfile

// Without these flags the checks after opening still refuse what is not a
// regular file.
const (
	nonBlock = 0
	noFollow = 0
)
