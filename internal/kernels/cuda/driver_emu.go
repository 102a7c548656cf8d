//go:build gpuemu && !gpu

package cuda

import (
	"github.com/sincere-ml/sincere/internal/kernels"
	"time"
	"unsafe"

	"github.com/sincere-ml/sincere/internal/cudaemu"
)

// Support reports whether this binary has a CUDA backend: in a gpuemu
// build, the CPU emulator of the kernels stands in for the GPU.
const Support = true

// OpenLossEngine returns the CUDA loss engine on the emulator.
func OpenLossEngine(opt kernels.CUDAOptions) (kernels.LossEngine, error) {
	return newLossEngine(emuDriver{}, opt)
}

// Available is true: the emulator is always there.
func Available() bool { return true }

// emuDriver runs the kernels in the CPU emulator (package cudaemu). It
// presents itself as a compute capability 8.0 device, so that every kernel
// variant is reachable.
type emuDriver struct{}

func (emuDriver) Info() kernels.GPUInfo {
	return kernels.GPUInfo{Name: "cudaemu (CPU emulator)", Major: 8, Minor: 0} // no peak rates: no floor
}

func (emuDriver) Alloc(bytes int) (devPtr, error) {
	p, err := cudaemu.Alloc(bytes)
	return devPtr(p), err
}

func (emuDriver) Free(p devPtr, bytes int) error {
	cudaemu.Free(uintptr(p), bytes)
	return nil
}

func (emuDriver) Upload(dst devPtr, src unsafe.Pointer, bytes int) error {
	cudaemu.CopyIn(uintptr(dst), src, bytes)
	return nil
}

func (emuDriver) Download(dst unsafe.Pointer, src devPtr, bytes int) error {
	cudaemu.CopyOut(dst, uintptr(src), bytes)
	return nil
}

func (emuDriver) Launch(kernel string, grid, block [3]int, args []uint64) (float64, error) {
	t0 := time.Now()
	err := cudaemu.Launch(kernel, grid, block, args)
	return float64(time.Since(t0).Nanoseconds()) / 1e6, err
}

func (emuDriver) Close() error { return nil }
