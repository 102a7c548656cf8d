package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

// Tolerances of DESIGN section 2 for the CPU engines.
const (
	lossTol = kerneltest.LossTol
	gradTol = kerneltest.GradTol
)

// engines returns the CPU loss engine variants every test runs: both kernel sets
// where the processor has the fast one, one and several workers, and tile
// sides that put sizes across tile boundaries.
func engines(t *testing.T) map[string]*LossEngine {
	t.Helper()
	out := map[string]*LossEngine{}
	for _, portable := range []bool{true, false} {
		for _, opt := range []kernels.CPUOptions{{Workers: 1, Tile: 48}, {Workers: 3, Tile: 96}, {Workers: 2, Tile: 192}, {Workers: 2}} {
			opt.Portable = portable
			e, err := NewLossEngine(opt)
			if err != nil {
				t.Fatal(err)
			}
			if !portable && e.ks.name == "portable" {
				continue // no fast kernels on this processor
			}
			out[fmt.Sprintf("%s/w%d/t%d", e.ks.name, opt.Workers, opt.Tile)] = e
		}
	}
	return out
}

func TestCPUMatchesGolden(t *testing.T) {
	cases := kerneltest.LoadGolden(t)
	for name, e := range engines(t) {
		var w kerneltest.Worst
		for _, c := range cases {
			grad := make([]float32, c.N*c.D)
			res, err := e.Compute(c.Params(t), kerneltest.Float32s(c.Embeddings), c.N, c.D, c.Labels, grad)
			if err != nil {
				t.Fatalf("%s %s/%s: %v", name, c.Note, c.Loss, err)
			}
			le, ge := numcheck.RelErr(res.Loss, c.ExpectedLoss), numcheck.RelL2(grad, c.ExpectedGrad)
			w.Add(le, ge)
			if le > lossTol || ge > gradTol {
				t.Errorf("%s %s/%s: loss %.9g want %.9g (rel %.2g), grad rel L2 %.2g",
					name, c.Note, c.Loss, res.Loss, c.ExpectedLoss, le, ge)
			}
		}
		t.Logf("%s: worst loss rel err %.2g, worst grad rel L2 %.2g", name, w.Loss, w.Grad)
	}
}

func TestCPUMatchesReference(t *testing.T) {
	type shape struct {
		n, d, classes int
		tau           float64
		pull          float64
	}
	shapes := []shape{
		{1 + 1, 3, 1, 0.1, 0},  // N = 2, one class
		{3, 5, 2, 0.5, 0},      // N = 3
		{47, 17, 5, 0.07, 0},   // just under a tile
		{49, 16, 3, 0.1, 2},    // just over a tile
		{97, 33, 10, 0.02, 0},  // tau = 0.02
		{130, 8, 1, 0.1, 0},    // one class
		{150, 24, 140, 0.1, 0}, // most labels occur once
		{200, 64, 2, 0.02, 2},  // two tight classes, small tau
		{301, 128, 10, 0.1, 1}, // several blocks
		{64, 12, 4, 1.0, 0},    // large tau
	}
	rng := rand.New(rand.NewPCG(1, 2))
	engs := engines(t)
	var w kerneltest.Worst
	for _, sh := range shapes {
		z, z32, labels := kerneltest.PulledBatch(rng, sh.n, sh.d, sh.classes, sh.pull)
		for _, l := range []kernels.Loss{kernels.SupCon, kernels.SINCERE, kernels.EpsSupInfoNCE} {
			p := kernels.Params{Loss: l, Temperature: sh.tau, Epsilon: 0.25}
			want, wantGrad, wantA, err := kernels.Reference(p, z, sh.n, sh.d, labels)
			if err != nil {
				if err == kernels.ErrNoAnchors {
					continue
				}
				t.Fatal(err)
			}
			for name, e := range engs {
				grad := make([]float32, sh.n*sh.d)
				for i := range grad {
					grad[i] = float32(math.NaN()) // every element must be written
				}
				res, err := e.Compute(p, z32, sh.n, sh.d, labels, grad)
				if err != nil {
					t.Fatalf("%s %v n=%d: %v", name, l, sh.n, err)
				}
				if res.Anchors != wantA {
					t.Errorf("%s %v n=%d: %d anchors, want %d", name, l, sh.n, res.Anchors, wantA)
				}
				le, ge := numcheck.RelErr(res.Loss, want), numcheck.RelL2(grad, wantGrad)
				tol := gradTol
				if sh.pull > 0 && l == kernels.SupCon {
					// In tight clusters SupCon's positive terms are
					// c (|P| softmax - 1) with |P| softmax near 1: the
					// float32 rounding of the dot products alone (the
					// float64 formulas fed float32 similarities) moves
					// the gradient by ~1e-4. Any float32 SupCon,
					// PyTorch's included, has this error.
					tol = 1e-3
				} else {
					w.Add(le, ge)
				}
				if le > lossTol || ge > tol || math.IsNaN(ge) {
					t.Errorf("%s %v n=%d d=%d tau=%g: loss %.9g want %.9g (rel %.2g), grad rel L2 %.2g",
						name, l, sh.n, sh.d, sh.tau, res.Loss, want, le, ge)
				}
			}
		}
	}
	t.Logf("worst loss rel err %.2g, worst grad rel L2 %.2g", w.Loss, w.Grad)
}

func TestCPURejectsBadInput(t *testing.T) {
	e, err := NewLossEngine(kernels.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kerneltest.CheckRejects(t, e)
}

// TestCPUForwardOnly checks that a nil gradient buffer gives the same loss.
func TestCPUForwardOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	z, labels := kerneltest.Batch(rng, 70, 9, 4)
	e, _ := NewLossEngine(kernels.CPUOptions{})
	for _, l := range []kernels.Loss{kernels.SupCon, kernels.SINCERE, kernels.EpsSupInfoNCE} {
		p := kernels.Params{Loss: l, Temperature: 0.2, Epsilon: 0.1}
		a, err := e.Compute(p, kerneltest.Float32s(z), 70, 9, labels, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := e.Compute(p, kerneltest.Float32s(z), 70, 9, labels, make([]float32, 70*9))
		if a != b {
			t.Errorf("%v: forward-only %+v, with gradient %+v", l, a, b)
		}
	}
}

// TestCPUIsDeterministic checks the claim that each row block is computed by
// one worker start to end: the bits do not depend on the number of workers.
func TestCPUIsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	z, labels := kerneltest.Batch(rng, 500, 24, 7)
	for _, l := range []kernels.Loss{kernels.SupCon, kernels.SINCERE} {
		p := kernels.Params{Loss: l, Temperature: 0.1}
		var first []float32
		var firstLoss float64
		for _, w := range []int{1, 2, 5} {
			e, _ := NewLossEngine(kernels.CPUOptions{Workers: w})
			grad := make([]float32, len(z))
			res, err := e.Compute(p, kerneltest.Float32s(z), 500, 24, labels, grad)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first, firstLoss = grad, res.Loss
				continue
			}
			if res.Loss != firstLoss {
				t.Errorf("%v: %d workers give loss %v, 1 worker %v", l, w, res.Loss, firstLoss)
			}
			for i := range grad {
				if grad[i] != first[i] {
					t.Fatalf("%v: %d workers differ at gradient element %d", l, w, i)
				}
			}
		}
	}
}
