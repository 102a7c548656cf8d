//go:build gpuemu && !gpu

package cuda

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/sincere-ml/sincere/internal/cudaemu"
	"github.com/sincere-ml/sincere/internal/kernels"
)

// Support reports whether this binary has a CUDA backend: in a gpuemu
// build, the CPU emulator of the kernels stands in for the GPU.
const Support = true

// OpenLossEngine returns the CUDA loss engine on the emulator.
func OpenLossEngine(opt kernels.CUDAOptions) (kernels.LossEngine, error) {
	e, err := newLossEngine(&emuDriver{}, opt)
	if err != nil {
		return nil, err // a plain nil, not a nil *LossEngine in the interface
	}
	return e, nil
}

// OpenDevice returns the CUDA training device on the emulator.
func OpenDevice(opt kernels.CUDAOptions) (kernels.Device, error) {
	d, err := newDevice(&emuDriver{}, opt)
	if err != nil {
		return nil, err // a plain nil, not a nil *Device in the interface
	}
	return d, nil
}

// isEmulator reports whether the kernels run on the CPU emulator: yes.
func isEmulator() bool { return true }

// Available is true: the emulator is always there.
func Available() bool { return true }

// emuDriver runs the kernels in the CPU emulator (package cudaemu). It
// presents itself as a compute capability 8.0 device, so that every kernel
// variant is reachable. A launch runs to its end before it returns; a
// fault is kept for the next Sync, as on a GPU.
type emuDriver struct {
	fault error
	marks []time.Time
}

func (*emuDriver) Info() kernels.GPUInfo {
	return kernels.GPUInfo{Name: "cudaemu (CPU emulator)", Major: 8, Minor: 0} // no peak rates: no floor
}

func (d *emuDriver) Alloc(bytes int) (devPtr, error) {
	p, err := cudaemu.Alloc(bytes)
	return devPtr(p), err
}

func (d *emuDriver) Free(p devPtr, bytes int) error {
	cudaemu.Free(uintptr(p), bytes)
	return nil
}

func (d *emuDriver) Upload(dst devPtr, src unsafe.Pointer, bytes int) error {
	cudaemu.CopyIn(uintptr(dst), src, bytes)
	return nil
}

func (d *emuDriver) Download(dst unsafe.Pointer, src devPtr, bytes int) error {
	if err := d.Sync(); err != nil {
		return err
	}
	cudaemu.CopyOut(dst, uintptr(src), bytes)
	return nil
}

func (d *emuDriver) Launch(kernel string, grid, block [3]int, args []uint64) error {
	if d.fault != nil {
		return nil // a failed context runs nothing until the fault is reported
	}
	d.fault = cudaemu.Launch(kernel, grid, block, args)
	return nil
}

func (d *emuDriver) Sync() error {
	err := d.fault
	d.fault = nil
	return err
}

func (d *emuDriver) Mark() (int, error) {
	d.marks = append(d.marks, time.Now())
	return len(d.marks) - 1, nil
}

func (d *emuDriver) Elapsed(from, to int) (float64, error) {
	if from < 0 || to >= len(d.marks) || from > to {
		return 0, fmt.Errorf("cudaemu: no marks %d and %d", from, to)
	}
	return float64(d.marks[to].Sub(d.marks[from]).Nanoseconds()) / 1e6, nil
}

func (d *emuDriver) ResetMarks() { d.marks = d.marks[:0] }

func (d *emuDriver) Close() error { return nil }
