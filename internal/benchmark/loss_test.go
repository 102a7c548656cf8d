package benchmark

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
)

func TestBatchIsUnitNormAndBalanced(t *testing.T) {
	z, labels := Batch(100, 7, 10, 3)
	counts := map[int]int{}
	for i, y := range labels {
		counts[y]++
		var norm float64
		for _, v := range z[i*7 : (i+1)*7] {
			norm += float64(v) * float64(v)
		}
		if math.Abs(norm-1) > 1e-6 {
			t.Fatalf("row %d has squared norm %v", i, norm)
		}
	}
	if len(counts) != 10 {
		t.Fatalf("%d classes, want 10", len(counts))
	}
	for y, c := range counts {
		if c != 10 {
			t.Errorf("class %d has %d rows, want 10", y, c)
		}
	}
	z2, l2 := Batch(100, 7, 10, 3)
	if z2[17] != z[17] || l2[42] != labels[42] {
		t.Error("same seed, different batch")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{1, 2, 9}, 2}, {[]float64{1, 2, 4, 9}, 3}, {[]float64{5}, 5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseLosses(t *testing.T) {
	all, err := ParseLosses([]string{"all"})
	if err != nil || len(all) != 3 {
		t.Fatalf("all: %v, %v", all, err)
	}
	if _, err := ParseLosses([]string{"sincere", "bogus"}); err == nil {
		t.Error("bogus loss accepted")
	}
}

func TestRunLossTable(t *testing.T) {
	o := LossOptions{Sizes: []int{64}, Dim: 8, Losses: []kernels.Loss{kernels.SupCon}, Runs: 5, Temperature: 0.1, Classes: 4, Seed: 1}
	calls := 0
	rows, err := RunLoss(o, func() (kernels.LossEngine, error) { return cpu.NewLossEngine(kernels.CPUOptions{}) },
		func(done, total int, what string) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || calls != 6 || rows[0].Runs != 5 || rows[0].Min > rows[0].Median || rows[0].Median > rows[0].Max {
		t.Fatalf("rows %+v after %d progress calls", rows, calls)
	}
	var b bytes.Buffer
	if err := WriteLossTable(&b, rows); err != nil || !strings.Contains(b.String(), "supcon") || strings.Count(b.String(), "\n") != 2 {
		t.Errorf("table:\n%s", b.String())
	}
	for _, bad := range []LossOptions{{}, {Sizes: []int{1}, Dim: 8, Losses: o.Losses, Runs: 5, Temperature: 1, Classes: 1}, {Sizes: []int{8}, Dim: 8, Losses: o.Losses, Runs: 4, Temperature: 1, Classes: 1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// fakeGPU is an engine that reports a device profile, as the CUDA engine
// does: the CPU's results, fixed kernel times.
type fakeGPU struct {
	*cpu.LossEngine
	closed bool
}

func (f *fakeGPU) Device() string { return "cuda" }
func (f *fakeGPU) Info() kernels.GPUInfo {
	return kernels.GPUInfo{Name: "Fake H100", Major: 9, SMs: 132, ClockKHz: 1_830_000}
}
func (f *fakeGPU) Precision() string { return kernels.PrecisionTF32 }
func (f *fakeGPU) Profile() kernels.CUDAProfile {
	return kernels.CUDAProfile{Kernels: []kernels.KernelTime{{Name: "forward", MS: 1}, {Name: "backward", MS: 3}}, ScratchBytes: 3 << 20}
}
func (f *fakeGPU) Close() error { f.closed = true; return nil }

func TestRunLossGPUColumns(t *testing.T) {
	o := LossOptions{Sizes: []int{64}, Dim: 8, Losses: []kernels.Loss{kernels.SINCERE}, Runs: 5, Temperature: 0.1, Classes: 4, Seed: 1}
	var engines []*fakeGPU
	rows, err := RunLoss(o, func() (kernels.LossEngine, error) {
		eng, err := cpu.NewLossEngine(kernels.CPUOptions{})
		f := &fakeGPU{LossEngine: eng}
		engines = append(engines, f)
		return f, err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if r.GPU != "Fake H100" || r.Precision != "tf32" || r.KernelMS != 4 || r.DeviceMB != 3 ||
		r.Kernels["forward"] != 1 || r.Kernels["backward"] != 3 {
		t.Fatalf("row %+v", r)
	}
	// H100 at 1.83 GHz: 2048 TF32 flop/clk/SM = 494.7 TFLOP/s, 16 exp/clk/SM.
	clock := 132 * 1.83e9
	wantMatrix := 6 * 64 * 64 * 8 / (2048 * clock) * 1e3
	wantSpecial := 2 * 64 * 64 / (16 * clock) * 1e3
	if math.Abs(r.MatrixMS/wantMatrix-1) > 1e-9 || math.Abs(r.SpecialMS/wantSpecial-1) > 1e-9 || r.FloorMS != max(wantMatrix, wantSpecial) {
		t.Errorf("floor %v (matrix %v, special %v), want matrix %v special %v", r.FloorMS, r.MatrixMS, r.SpecialMS, wantMatrix, wantSpecial)
	}
	if math.Abs(r.OfFloor()-r.FloorMS/4) > 1e-15 {
		t.Errorf("of floor %v", r.OfFloor())
	}
	if len(engines) != 1 || !engines[0].closed {
		t.Error("engine not closed after its case")
	}
	var b bytes.Buffer
	if err := WriteLossTable(&b, rows); err != nil || !strings.Contains(b.String(), "GPU: Fake H100") || !strings.Contains(b.String(), "of floor") {
		t.Errorf("table:\n%s", b.String())
	}
}
