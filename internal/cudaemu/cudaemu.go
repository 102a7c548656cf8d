//go:build gpuemu

package cudaemu

// #cgo CXXFLAGS: -std=c++17 -O2 -DSINCERE_EMU
// #cgo LDFLAGS: -lstdc++
// #include <stdlib.h>
// #include "emu_api.h"
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Alloc returns the address of n bytes standing in for device memory:
// filled with 0xff bytes (NaN as float32 or float64), so that a kernel that
// reads what nothing wrote shows it, and followed by an inaccessible page,
// so that a read past the end faults.
func Alloc(n int) (uintptr, error) {
	if n < 1 {
		return 0, fmt.Errorf("cudaemu: allocation of %d bytes", n)
	}
	p := C.emu_alloc(C.size_t(n))
	if p == 0 {
		return 0, fmt.Errorf("cudaemu: cannot map %d bytes", n)
	}
	return uintptr(p), nil
}

// Free releases a block of n bytes from Alloc.
func Free(p uintptr, n int) { C.emu_free(C.uintptr_t(p), C.size_t(n)) }

// CopyIn copies n bytes from host memory to an emulated device address.
func CopyIn(dst uintptr, src unsafe.Pointer, n int) {
	C.emu_copy_in(C.uintptr_t(dst), src, C.size_t(n))
}

// CopyOut copies n bytes from an emulated device address to host memory.
func CopyOut(dst unsafe.Pointer, src uintptr, n int) {
	C.emu_copy_out(dst, C.uintptr_t(src), C.size_t(n))
}

// Launch runs the kernel name on grid x block threads. args holds each
// parameter in 8 bytes (smaller values in the low bytes).
func Launch(name string, grid, block [3]int, args []uint64) error {
	return launch(name, grid, block, args, false)
}

// LaunchReversed is Launch on the reversed schedule: the blocks run from
// the last to the first, and each block's threads are resumed from the
// last to the first at every barrier. A kernel free of races and of
// dependencies between its blocks gives the same bits either way.
func LaunchReversed(name string, grid, block [3]int, args []uint64) error {
	return launch(name, grid, block, args, true)
}

func launch(name string, grid, block [3]int, args []uint64, reversed bool) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var msg [256]C.char
	var argp *C.uint64_t
	if len(args) > 0 {
		argp = (*C.uint64_t)(unsafe.Pointer(&args[0]))
	}
	rev := C.int(0)
	if reversed {
		rev = 1
	}
	rc := C.emu_launch(cname, C.int(grid[0]), C.int(grid[1]), C.int(grid[2]),
		C.int(block[0]), C.int(block[1]), C.int(block[2]), argp, C.int(len(args)), rev, &msg[0], C.int(len(msg)))
	if rc != 0 {
		return errors.New("cudaemu: " + C.GoString(&msg[0]))
	}
	return nil
}
