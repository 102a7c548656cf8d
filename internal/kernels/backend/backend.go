// Package backend opens a device or a loss engine by name: "cpu", "cuda"
// (which needs a binary built with the gpu tag and a GPU) or "auto" (the GPU
// when there is one and this binary can use it, else the CPU). It is the one
// place that knows every backend; everything else holds a kernels.Device
// or a kernels.LossEngine.
package backend

import (
	"fmt"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
	"github.com/sincere-ml/sincere/internal/kernels/cuda"
)

// CUDASupport reports whether this binary has a CUDA backend (the gpu
// build, or the gpuemu build whose CUDA kernels run on a CPU emulator).
const CUDASupport = cuda.Support

// CUDAAvailable reports whether this binary can use a GPU here.
func CUDAAvailable() bool { return cuda.Support && cuda.Available() }

// check validates a device name and the options.
func check(device string, opt kernels.Options) error {
	if err := opt.CUDA.Validate(); err != nil {
		return err
	}
	switch device {
	case kernels.DeviceCPU, kernels.DeviceCUDA, kernels.DeviceAuto:
		return nil
	}
	return fmt.Errorf("unknown device %q (want cpu, cuda or auto)", device)
}

// OpenLossEngine returns the loss engine of a device.
func OpenLossEngine(device string, opt kernels.Options) (kernels.LossEngine, error) {
	if err := check(device, opt); err != nil {
		return nil, err
	}
	switch device {
	case kernels.DeviceCUDA:
		return cuda.OpenLossEngine(opt.CUDA)
	case kernels.DeviceAuto:
		if CUDAAvailable() {
			if e, err := cuda.OpenLossEngine(opt.CUDA); err == nil {
				return e, nil
			}
		}
	}
	return cpu.NewLossEngine(opt.CPU)
}

// OpenDevice returns a training device: "cuda" needs the gpu build and a
// GPU; "auto" takes the GPU when there is one and this binary can use it,
// else the CPU.
func OpenDevice(device string, opt kernels.Options) (kernels.Device, error) {
	if err := check(device, opt); err != nil {
		return nil, err
	}
	switch device {
	case kernels.DeviceCUDA:
		return cuda.OpenDevice(opt.CUDA)
	case kernels.DeviceAuto:
		if CUDAAvailable() {
			if d, err := cuda.OpenDevice(opt.CUDA); err == nil {
				return d, nil
			}
		}
	}
	return cpu.NewDevice(opt.CPU)
}
