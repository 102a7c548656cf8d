package kernels

// This file holds what the CUDA engine reports, in every build, so that
// commands can describe a GPU run without the gpu build tag.

// GPUInfo describes a CUDA device.
type GPUInfo struct {
	// Name is the model, e.g. "NVIDIA H100 80GB HBM3".
	Name string
	// Major and Minor are the compute capability.
	Major, Minor int
	// SMs is the number of multiprocessors; ClockKHz their clock.
	SMs, ClockKHz int
	// Memory is the device memory in bytes.
	Memory int64
}

// CUDAProfile is what the last Compute of a CUDA engine did on the device.
type CUDAProfile struct {
	// Kernels lists each kernel launched, in order, with its time.
	Kernels []KernelTime
	// ScratchBytes is the device memory held beyond the inputs (embeddings,
	// labels) and the output gradient: the sorted copy of Z, the per-row
	// statistics and parameters.
	ScratchBytes int64
}

// KernelTime is one kernel launch and its duration.
type KernelTime struct {
	Name string
	MS   float64
}

// KernelMS is the total kernel time.
func (p CUDAProfile) KernelMS() float64 {
	var t float64
	for _, k := range p.Kernels {
		t += k.MS
	}
	return t
}

// Profiler is implemented by engines that time their device work: the CUDA
// engine.
type Profiler interface {
	// Info describes the GPU.
	Info() GPUInfo
	// Precision is the precision of the similarity tiles.
	Precision() string
	// Profile describes the last call.
	Profile() CUDAProfile
}

// PeakRates returns the datasheet-style peak rates of a GPU at its reported
// clock: matrix flop/s of the given precision's products (TF32 tensor cores
// for tf32 and tf32x3, the FP32 cores for fp32) and special-function
// (exponential) results per second. Zero when the architecture is unknown.
func (g GPUInfo) PeakRates(precision string) (flops, exps float64) {
	clock := float64(g.SMs) * float64(g.ClockKHz) * 1e3
	var tensor, fp32 float64 // flops per clock per multiprocessor
	switch {
	case g.Major == 9:
		tensor, fp32 = 2048, 256
	case g.Major == 8 && g.Minor == 0:
		tensor, fp32 = 1024, 128
	case g.Major == 8:
		tensor, fp32 = 256, 256
	case g.Major == 7:
		fp32 = 128
	case g.Major == 6 && g.Minor == 0:
		fp32 = 128
	case g.Major == 6:
		fp32 = 256
	default:
		return 0, 0
	}
	exps = 16 * clock // MUFU.EX2: 16 per clock per multiprocessor
	if precision == PrecisionFP32 {
		return fp32 * clock, exps
	}
	return tensor * clock, exps
}

// LossFloor is the shortest time a fused forward+backward pass over n rows
// of width d can take at the peak rates: the larger of the matrix time for
// 6 n^2 d flops and the special-function time for the n^2 exponentials of
// each of the two full passes. Zero when the rates are unknown.
func (g GPUInfo) LossFloor(precision string, n, d int) (seconds, matrix, special float64) {
	flops, exps := g.PeakRates(precision)
	if flops == 0 || exps == 0 {
		return 0, 0, 0
	}
	nn := float64(n) * float64(n)
	matrix = 6 * nn * float64(d) / flops
	special = 2 * nn / exps
	return max(matrix, special), matrix, special
}
