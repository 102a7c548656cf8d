//go:build gpu || gpuemu

package cuda

import (
	"os"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
)

// deviceTolerances are the CUDA device's bounds in the conformance suite.
// FP32 is held to the CPU's. TF32 rounds each product's operands to 10-bit
// mantissas (2^-11 relative, float accumulation): 3e-3 on a product, a
// layer's output and gradients; 0.3 on a whole step of the suite's tiny
// random networks, which amplify rounding about a hundredfold (their FP32
// steps show 1e-5 from float32's 6e-8). The GPU check holds a TF32 step to
// 1e-2 against the CPU device at training sizes.
func deviceTolerances(prec string) kerneltest.Tolerances {
	t := kerneltest.CPUTolerances()
	if prec == kernels.PrecisionTF32 {
		t.Product, t.Layer, t.Step = 3e-3, 3e-3, 0.3
	}
	return t
}

// TestDeviceConformance runs the device conformance suite on the CUDA
// device, in both precisions the GPU offers: on the CPU emulator in a
// gpuemu build (small problems: the emulator runs one block at a time), on
// the GPU in a gpu build (full sizes with SINCERE_GPU_CHECK=full).
func TestDeviceConformance(t *testing.T) {
	precs := devicePrecisions(t)
	small := !Support || os.Getenv("SINCERE_GPU_CHECK") != "full" && isEmulator()

	for _, prec := range precs {
		t.Run(prec, func(t *testing.T) {
			kerneltest.Run(t, func(t *testing.T) kernels.Device {
				d, err := OpenDevice(kernels.CUDAOptions{Precision: prec})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = d.(*Device).Close() })
				return d
			}, kerneltest.Options{Tol: deviceTolerances(prec), Small: small})
		})
	}
}

// devicePrecisions lists the training precisions the GPU runs: fp32, and
// tf32 on compute capability 8.0 and newer.
func devicePrecisions(t *testing.T) []string {
	t.Helper()
	probe, err := OpenDevice(kernels.CUDAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := probe.(*Device)
	defer d.Close()
	if d.info.Major >= 8 {
		return []string{kernels.PrecisionFP32, kernels.PrecisionTF32}
	}
	return []string{kernels.PrecisionFP32}
}
