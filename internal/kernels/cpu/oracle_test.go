package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
	"github.com/sincere-ml/sincere/internal/numcheck"
	"github.com/sincere-ml/sincere/internal/oracle"
)

// gorgoniaLoss evaluates the loss and its gradient with respect to Z through
// gorgonia's symbolic differentiation (package oracle): an independent
// second oracle that shares no code with Reference or the fused engine.
func gorgoniaLoss(t *testing.T, p kernels.Params, z []float64, n, d int, labels []int) (float64, []float64) {
	t.Helper()
	Z := oracle.Var(G.NewGraph(), "z", z, n, d)
	cost, err := oracle.ContrastiveLoss(Z, labels, p.Loss.String(), p.Temperature)
	if err != nil {
		t.Fatal(err)
	}
	loss, grads, err := oracle.Run(cost, Z)
	if err != nil {
		t.Fatal(err)
	}
	return loss, grads[0]
}

func TestCPUMatchesGorgoniaAutodiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	e, err := NewLossEngine(kernels.CPUOptions{Tile: 48})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range [][3]int{{20, 6, 3}, {61, 10, 5}, {9, 4, 2}} {
		n, d, classes := sh[0], sh[1], sh[2]
		z, labels := kerneltest.Batch(rng, n, d, classes)
		for _, l := range []kernels.Loss{kernels.SupCon, kernels.SINCERE} {
			p := kernels.Params{Loss: l, Temperature: 0.5}
			want, wantGrad := gorgoniaLoss(t, p, z, n, d, labels)
			grad := make([]float32, n*d)
			res, err := e.Compute(p, kerneltest.Float32s(z), n, d, labels, grad)
			if err != nil {
				t.Fatal(err)
			}
			if le, ge := numcheck.RelErr(res.Loss, want), numcheck.RelL2(grad, wantGrad); le > lossTol || ge > gradTol {
				t.Errorf("%v n=%d: loss %.9g, gorgonia %.9g (rel %.2g); grad rel L2 %.2g", l, n, res.Loss, want, le, ge)
			}
			// The two float64 oracles agree to rounding.
			ref, refGrad, _, _ := kernels.Reference(p, z, n, d, labels)
			if le, ge := numcheck.RelErr(ref, want), numcheck.RelL2(refGrad, wantGrad); le > 1e-12 || ge > 1e-10 {
				t.Errorf("%v n=%d: Reference and gorgonia differ: loss rel %.2g, grad rel L2 %.2g", l, n, le, ge)
			}
		}
	}
}

// TestSincereNeverExceedsSupCon checks the inequality that holds pair by
// pair (SINCERE's denominator is a subset of SupCon's), on the fused engine
// and on the reference, over many random batches.
func TestSincereNeverExceedsSupCon(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	e, _ := NewLossEngine(kernels.CPUOptions{})
	for trial := range 60 {
		n := 2 + rng.IntN(150)
		d := 1 + rng.IntN(40)
		classes := 1 + rng.IntN(12)
		z, labels := kerneltest.Batch(rng, n, d, classes)
		if trial%3 == 0 {
			z, _, labels = kerneltest.PulledBatch(rng, n, d, classes, 3*rng.Float64())
		}
		tau := []float64{0.02, 0.05, 0.1, 0.5, 1}[trial%5]
		sup, err := e.Compute(kernels.Params{Loss: kernels.SupCon, Temperature: tau}, kerneltest.Float32s(z), n, d, labels, nil)
		if err == kernels.ErrNoAnchors {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sin, err := e.Compute(kernels.Params{Loss: kernels.SINCERE, Temperature: tau}, kerneltest.Float32s(z), n, d, labels, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sin.Loss > sup.Loss+1e-5*max(1, math.Abs(sup.Loss)) { // float32 rounding, absolute near 0
			t.Errorf("n=%d classes=%d tau=%g: SINCERE %.9g > SupCon %.9g", n, classes, tau, sin.Loss, sup.Loss)
		}
		rs, _, _, _ := kernels.Reference(kernels.Params{Loss: kernels.SupCon, Temperature: tau}, z, n, d, labels)
		rn, _, _, _ := kernels.Reference(kernels.Params{Loss: kernels.SINCERE, Temperature: tau}, z, n, d, labels)
		if rn > rs+1e-12*math.Abs(rs) {
			t.Errorf("reference n=%d: SINCERE %.15g > SupCon %.15g", n, rn, rs)
		}
	}
}

func TestSupConBaseTemperature(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	z, labels := kerneltest.Batch(rng, 90, 16, 6)
	e, _ := NewLossEngine(kernels.CPUOptions{})
	p := kernels.Params{Loss: kernels.SupCon, Temperature: 0.1, BaseTemperature: 0.07}
	want, wantGrad, _, err := kernels.Reference(p, z, 90, 16, labels)
	if err != nil {
		t.Fatal(err)
	}
	unscaled, _, _, _ := kernels.Reference(kernels.Params{Loss: kernels.SupCon, Temperature: 0.1}, z, 90, 16, labels)
	if numcheck.RelErr(want, unscaled*0.1/0.07) > 1e-12 {
		t.Fatalf("reference: base temperature scales the loss by %g, want tau/b", want/unscaled)
	}
	grad := make([]float32, 90*16)
	res, err := e.Compute(p, kerneltest.Float32s(z), 90, 16, labels, grad)
	if err != nil {
		t.Fatal(err)
	}
	if le, ge := numcheck.RelErr(res.Loss, want), numcheck.RelL2(grad, wantGrad); le > lossTol || ge > gradTol {
		t.Errorf("loss rel %.2g, grad rel L2 %.2g", le, ge)
	}
	// SINCERE ignores the base temperature.
	a, _ := e.Compute(kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1, BaseTemperature: 0.07}, kerneltest.Float32s(z), 90, 16, labels, nil)
	b, _ := e.Compute(kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1}, kerneltest.Float32s(z), 90, 16, labels, nil)
	if a != b {
		t.Errorf("SINCERE changed with the base temperature: %v vs %v", a, b)
	}
}
