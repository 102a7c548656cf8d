//go:build gpu || gpuemu

package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// devPtr is a device address.
type devPtr uintptr

// gpuDriver is the part of the CUDA driver API the backend uses. There are
// two: gorgonia.org/cu on a GPU (build tag gpu, driver_cu.go) and the CPU
// emulator of the kernels (build tag gpuemu, driver_emu.go) for tests. Work
// goes to one stream, in order: launches return at once, and a fault in a
// kernel surfaces at the next Sync or copy to the host.
type gpuDriver interface {
	// Info describes the device.
	Info() kernels.GPUInfo
	// Alloc returns bytes of device memory (contents undefined).
	Alloc(bytes int) (devPtr, error)
	// Free releases memory from Alloc.
	Free(p devPtr, bytes int) error
	// Upload copies bytes from host memory to the device, after the work
	// before it.
	Upload(dst devPtr, src unsafe.Pointer, bytes int) error
	// Download copies bytes from the device to host memory, after the
	// work before it (so it waits for it).
	Download(dst unsafe.Pointer, src devPtr, bytes int) error
	// Launch queues a kernel on grid x block threads; args holds each
	// parameter in 8 bytes. It returns launch errors (a missing kernel, a
	// bad configuration); errors while the kernel runs surface later.
	Launch(kernel string, grid, block [3]int, args []uint64) error
	// Sync waits for all queued work and returns the first error it
	// raised.
	Sync() error
	// Mark records a point in the stream and returns its index; marks are
	// numbered from 0 since the last ResetMarks.
	Mark() (int, error)
	// Elapsed returns the milliseconds between two marks; it waits for the
	// later one.
	Elapsed(from, to int) (float64, error)
	// ResetMarks forgets every mark.
	ResetMarks()
	// Close releases the context and everything in it.
	Close() error
}

// timedLaunch runs one kernel, waits for it and returns its time in
// milliseconds, between two marks around it.
func timedLaunch(d gpuDriver, kernel string, grid, block [3]int, args []uint64) (float64, error) {
	d.ResetMarks()
	a, err := d.Mark()
	if err != nil {
		return 0, err
	}
	if err := d.Launch(kernel, grid, block, args); err != nil {
		return 0, err
	}
	b, err := d.Mark()
	if err != nil {
		return 0, err
	}
	if err := d.Sync(); err != nil {
		return 0, fmt.Errorf("cuda: kernel failed: %w", err)
	}
	return d.Elapsed(a, b)
}

// kargs builds a kernel's argument slots.
type kargs []uint64

func (a kargs) ptr(p devPtr) kargs  { return append(a, uint64(p)) }
func (a kargs) i32(v int) kargs     { return append(a, uint64(uint32(int32(v)))) }
func (a kargs) i64(v int) kargs     { return append(a, uint64(int64(v))) }
func (a kargs) f32(v float32) kargs { return append(a, uint64(math.Float32bits(v))) }
func (a kargs) f64(v float64) kargs { return append(a, math.Float64bits(v)) }
func (a kargs) geom(g kernels.ConvGeom) kargs {
	return a.i32(g.N).i32(g.C).i32(g.H).i32(g.W).i32(g.K).i32(g.R).i32(g.S).i32(g.Stride).i32(g.Pad)
}
