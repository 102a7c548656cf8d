package kernels

import (
	"errors"
	"fmt"
	"strings"
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

// Precisions of the CUDA engine's similarity tiles, accepted by
// CUDAOptions.Precision.
const (
	// PrecisionAuto is TF32x3 where the GPU has TF32 tensor cores (compute
	// capability 8.0 and newer), FP32 elsewhere: float32 accuracy either way.
	PrecisionAuto = "auto"
	// PrecisionFP32 multiplies in float32 on the ordinary cores: any GPU,
	// slowest.
	PrecisionFP32 = "fp32"
	// PrecisionTF32 uses the tensor cores with TF32 operands (10-bit
	// mantissas, float32 accumulation): fastest, but each similarity moves
	// by ~5e-5/tau, so gradients are good to about 1e-3 on spread-out
	// embeddings and worse in tight clusters at small tau.
	PrecisionTF32 = "tf32"
	// PrecisionTF32x3 splits each operand into two TF32 parts and does three
	// tensor-core products: float32 accuracy at three times the tensor work.
	PrecisionTF32x3 = "tf32x3"
)

// Precisions lists the accepted CUDA precisions.
func Precisions() []string {
	return []string{PrecisionAuto, PrecisionFP32, PrecisionTF32, PrecisionTF32x3}
}

// CUDAOptions configures a CUDA engine.
type CUDAOptions struct {
	// Precision is one of Precisions(); "" means auto.
	Precision string
}

// Validate reports an unknown precision.
func (o CUDAOptions) Validate() error {
	if o.Precision == "" {
		return nil
	}
	for _, p := range Precisions() {
		if o.Precision == p {
			return nil
		}
	}
	return fmt.Errorf("unknown CUDA precision %q (want %s)", o.Precision, strings.Join(Precisions(), ", "))
}

// Options configures the engine Open returns.
type Options struct {
	CPU  CPUOptions
	CUDA CUDAOptions
}

// ErrNoCUDASupport is returned for --device cuda by a binary built without
// the gpu tag.
var ErrNoCUDASupport = errors.New("this sincere binary was built without CUDA support: " +
	"build one with `make cuda` (needs the CUDA toolkit, see scripts/install-cuda-toolkit.sh) " +
	"and run it on a machine with an NVIDIA GPU, or use --device cpu")

// Open returns the engine for a device: "cpu"; "cuda", which needs a binary
// built with CUDA support and a GPU; or "auto", which takes the GPU when
// there is one and this binary can use it, else the CPU.
func Open(device string, opt Options) (Engine, error) {
	if err := opt.CUDA.Validate(); err != nil {
		return nil, err
	}
	switch device {
	case DeviceCPU:
		return NewCPU(opt.CPU)
	case DeviceCUDA:
		return openCUDA(opt.CUDA)
	case DeviceAuto:
		if cudaAvailable() {
			if e, err := openCUDA(opt.CUDA); err == nil {
				return e, nil
			}
		}
		return NewCPU(opt.CPU)
	}
	return nil, fmt.Errorf("unknown device %q (want cpu, cuda or auto)", device)
}
