//go:build !gpu && !gpuemu

package cuda

import "github.com/sincere-ml/sincere/internal/kernels"

// Support reports whether this binary was built with the gpu tag.
const Support = false

// OpenLossEngine fails: this build has no CUDA backend.
func OpenLossEngine(kernels.CUDAOptions) (kernels.LossEngine, error) {
	return nil, kernels.ErrNoCUDASupport
}

// Available reports whether a usable GPU is present: never, here.
func Available() bool { return false }

// OpenDevice fails: this build has no CUDA backend.
func OpenDevice(kernels.CUDAOptions) (kernels.Device, error) { return nil, kernels.ErrNoCUDASupport }
