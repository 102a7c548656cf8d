//go:build !gpu && !gpuemu

package kernels

// CUDASupport reports whether this binary was built with the gpu tag.
const CUDASupport = false

// openCUDA fails: this build has no CUDA backend.
func openCUDA(CUDAOptions) (Engine, error) { return nil, ErrNoCUDASupport }

// cudaAvailable reports whether a usable GPU is present: never, here.
func cudaAvailable() bool { return false }
