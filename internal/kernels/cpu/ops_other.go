//go:build !amd64 || purego

package cpu

// fastKernels returns nil: this build has only the portable kernels.
func fastKernels() *kernelSet { return nil }
