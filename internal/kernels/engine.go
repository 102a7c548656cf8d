package kernels

import (
	"errors"
	"fmt"
	"strings"
)

// LossEngine evaluates a loss and its gradient from host memory to host
// memory, for `sincere loss` and the benchmarks; training calls
// Device.ContrastiveLoss on device buffers instead.
type LossEngine interface {
	// Device names where the engine runs: "cpu" or "cuda".
	Device() string
	// Describe says which processor and kernels it uses, for logs.
	Describe() string
	// Compute evaluates the loss of z (n rows of d float32, row-major) with
	// the given labels and, when grad is not nil (n x d), writes dL/dZ.
	Compute(p Params, z []float32, n, d int, labels []int, grad []float32) (Result, error)
}

// Device names accepted by the backends' Open.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
	DeviceAuto = "auto"
)

// Precisions of the CUDA matrix products, accepted by CUDAOptions.Precision.
const (
	// PrecisionAuto is the default: for the loss, TF32x3 where the GPU has
	// TF32 tensor cores (compute capability 8.0 and newer) and FP32
	// elsewhere; for training, TF32 where there are tensor cores.
	PrecisionAuto = "auto"
	// PrecisionFP32 multiplies in float32 on the ordinary cores: any GPU,
	// slowest.
	PrecisionFP32 = "fp32"
	// PrecisionTF32 uses the tensor cores with TF32 operands (10-bit
	// mantissas, float32 accumulation): fastest, but each similarity moves
	// by ~5e-5/tau, so gradients are good to about 1e-3 on spread-out
	// embeddings and worse in tight clusters at small tau. What PyTorch
	// uses for cuDNN convolutions by default.
	PrecisionTF32 = "tf32"
	// PrecisionTF32x3 splits each operand into two TF32 parts and does three
	// tensor-core products: float32 accuracy at three times the tensor work.
	PrecisionTF32x3 = "tf32x3"
)

// Precisions lists the accepted CUDA precisions.
func Precisions() []string {
	return []string{PrecisionAuto, PrecisionFP32, PrecisionTF32, PrecisionTF32x3}
}

// CPUOptions configures the CPU backend. The zero value is the default:
// every core, loss tiles sized from the batch, the fastest kernels the
// processor runs.
type CPUOptions struct {
	// Workers is the number of goroutines; 0 means GOMAXPROCS.
	Workers int
	// Tile is the side of the loss's square similarity tiles, a multiple
	// of 48; 0 chooses it from the batch size.
	Tile int
	// Portable forces the pure-Go kernels even where assembly ones exist.
	Portable bool
}

// CUDAOptions configures the CUDA backend.
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

// Options configures the backend a device name opens.
type Options struct {
	CPU  CPUOptions
	CUDA CUDAOptions
}

// ErrNoCUDASupport is returned for --device cuda by a binary built without
// the gpu tag.
var ErrNoCUDASupport = errors.New("this sincere binary was built without CUDA support: " +
	"build one with `make cuda` (needs the CUDA toolkit, see scripts/install-cuda-toolkit.sh) " +
	"and run it on a machine with an NVIDIA GPU, or use --device cpu")
