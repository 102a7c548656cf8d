//go:build amd64 && !purego

package kernels

// fastOps returns the assembly kernels when the processor has AVX2 and FMA.
func fastOps() *tileOps { return nil }
