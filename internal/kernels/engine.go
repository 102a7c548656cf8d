package kernels

import (
	"errors"
	"fmt"
)

// Engine computes a loss and its gradient on one device.
type Engine interface {
	// Device names where the engine runs: "cpu" or "cuda".
	Device() string
	// Compute evaluates the loss of z (n rows of d float32, row-major) with
	// the given labels and, when grad is not nil (n x d), writes dL/dZ.
	Compute(p Params, z []float32, n, d int, labels []int, grad []float32) (Result, error)
}

// Device names accepted by Open.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
	DeviceAuto = "auto"
)

// ErrNoCUDASupport is returned for --device cuda by a binary built without
// the gpu tag.
var ErrNoCUDASupport = errors.New("this sincere binary was built without CUDA support: " +
	"build one with `make cuda` (needs the CUDA toolkit, see scripts/install-cuda-toolkit.sh) " +
	"and run it on a machine with an NVIDIA GPU, or use --device cpu")

// Open returns the engine for a device: "cpu"; "cuda", which needs a binary
// built with CUDA support and a GPU; or "auto", which takes the GPU when
// there is one and this binary can use it, else the CPU. opt configures the
// CPU engine.
func Open(device string, opt CPUOptions) (Engine, error) {
	switch device {
	case DeviceCPU:
		return NewCPU(opt)
	case DeviceCUDA:
		return openCUDA()
	case DeviceAuto:
		if cudaAvailable() {
			if e, err := openCUDA(); err == nil {
				return e, nil
			}
		}
		return NewCPU(opt)
	}
	return nil, fmt.Errorf("unknown device %q (want cpu, cuda or auto)", device)
}
