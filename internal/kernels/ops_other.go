//go:build !amd64 || purego

package kernels

// fastOps returns nil: this build has only the portable kernels.
func fastOps() *tileOps { return nil }

// fastMicro returns nil: this build multiplies matrices with gonum.
func fastMicro() func(k int, a, b, c []float32, ldc int, alpha float32, accumulate bool) {
	return nil
}

// fastNorm returns nil: this build has the portable loops only.
func fastNorm(c int) *normOps { return nil }

// interleaveFast returns nil: no assembly here.
func interleaveFast() func(dst []float32, src *[gemmMR][]float32, n int) { return nil }

// addToFast returns nil: no assembly here.
func addToFast() func(dst, src []float32) { return nil }
