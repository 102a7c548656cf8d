package cpu

// kernelSet is the hand-written code the CPU backend runs: AVX2/FMA assembly
// on amd64 processors that have it (ops_amd64.go), else portable Go with the
// same semantics. It is chosen once, when an engine or a device is made
// (chooseKernels); every piece of fast code hangs off it.
type kernelSet struct {
	// name says which set this is, for reports: "avx2-fma" or "portable".
	name string
	// tile holds the fused loss's tile primitives.
	tile tileOps
	// micro is the packed SGEMM's 6x16 micro-kernel: C = alpha A B (+ C).
	micro func(k int, a, b, c []float32, ldc int, alpha float32, accumulate bool)
	// norm returns the batch norm row loops for c channels.
	norm func(c int) *normOps
	// interleave, when not nil, interleaves six source rows into a
	// convolution's packed panel (whole vectors of 8 only).
	interleave func(dst []float32, src *[gemmMR][]float32, n int)
	// addTo, when not nil, sets dst += src.
	addTo func(dst, src []float32)
}

// portable reports whether this is the portable set, whose plain matrix
// products go through gonum.
func (k *kernelSet) portable() bool { return k == &portableKernels }

// portableKernels is the pure-Go set, for every platform.
var portableKernels = kernelSet{
	name:  "portable",
	tile:  portableOps,
	micro: microPortable,
	norm:  func(int) *normOps { return &portableNorm },
}

// chooseKernels returns the assembly set where the processor runs it,
// unless portable is set, else the portable one.
func chooseKernels(portable bool) *kernelSet {
	if !portable {
		if k := fastKernels(); k != nil {
			return k
		}
	}
	return &portableKernels
}
