package kernels

import (
	"math"
	"testing"
)

// TestPeakRates checks the rate model against datasheet figures.
func TestPeakRates(t *testing.T) {
	cases := []struct {
		name      string
		info      GPUInfo
		precision string
		tflops    float64 // datasheet dense rate
	}{
		{"A100 TF32", GPUInfo{Major: 8, Minor: 0, SMs: 108, ClockKHz: 1_410_000}, PrecisionTF32, 156},
		{"A100 FP32", GPUInfo{Major: 8, Minor: 0, SMs: 108, ClockKHz: 1_410_000}, PrecisionFP32, 19.5},
		{"H100 SXM TF32", GPUInfo{Major: 9, Minor: 0, SMs: 132, ClockKHz: 1_830_000}, PrecisionTF32x3, 494.7},
		{"H100 SXM FP32", GPUInfo{Major: 9, Minor: 0, SMs: 132, ClockKHz: 1_830_000}, PrecisionFP32, 61.8},
		{"RTX 3090 TF32", GPUInfo{Major: 8, Minor: 6, SMs: 82, ClockKHz: 1_695_000}, PrecisionTF32, 35.6},
		{"V100 FP32", GPUInfo{Major: 7, Minor: 0, SMs: 80, ClockKHz: 1_530_000}, PrecisionFP32, 15.7},
	}
	for _, c := range cases {
		flops, exps := c.info.PeakRates(c.precision)
		if got := flops / 1e12; math.Abs(got/c.tflops-1) > 0.02 {
			t.Errorf("%s: %.1f TFLOP/s, datasheet %.1f", c.name, got, c.tflops)
		}
		if want := 16 * float64(c.info.SMs) * float64(c.info.ClockKHz) * 1e3; exps != want {
			t.Errorf("%s: %g exp/s, want %g", c.name, exps, want)
		}
	}
	if f, e := (GPUInfo{Major: 5, SMs: 10, ClockKHz: 1}).PeakRates(PrecisionFP32); f != 0 || e != 0 {
		t.Error("rates for an unknown architecture")
	}
	h100 := GPUInfo{Major: 9, SMs: 132, ClockKHz: 1_830_000}
	floor, matrix, special := h100.LossFloor(PrecisionTF32, 32768, 128)
	// 6 * 32768^2 * 128 flops at 494.7 TFLOP/s: 1.67 ms; 2 * 32768^2 exps at 3.86e12/s: 0.56 ms.
	if math.Abs(matrix*1e3-1.667) > 0.01 || math.Abs(special*1e3-0.556) > 0.01 || floor != matrix {
		t.Errorf("H100 floor at N=32768: %v s (matrix %v, special %v)", floor, matrix, special)
	}
}
