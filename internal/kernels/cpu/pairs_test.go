package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
)

// TestPairStatsMatchReference checks the fused pair-statistics pass against
// the float64 reference on small batches, for every engine variant: the
// same pairs, sums within 1e-4 (the CPU gradient tolerance of DESIGN
// section 2), and the same repelled pairs but for at most
// one in a thousand: in tight clusters many of SupCon's G_ij = c (|P|
// softmax - 1) sit within float32 rounding of 0, and the sign of those
// follows the rounding of the similarities. SINCERE's and eps-SupInfoNCE's
// repelled counts and repulsive sums are exactly 0.
func TestPairStatsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for name, e := range engines(t) {
		for _, c := range []struct {
			n, d, classes int
			pull, tau     float64
		}{{7, 5, 2, 0, 0.5}, {130, 16, 3, 3, 0.1}, {200, 32, 2, 6, 0.1}, {97, 8, 10, 2, 0.2}, {150, 12, 1, 1, 0.1}} {
			z64, z32, labels := kerneltest.PulledBatch(rng, c.n, c.d, c.classes, c.pull)
			for _, loss := range []kernels.Loss{kernels.SupCon, kernels.SINCERE, kernels.EpsSupInfoNCE} {
				p := kernels.Params{Loss: loss, Temperature: c.tau, Epsilon: 0.25, BaseTemperature: 0.07}
				want, err := kernels.ReferencePairStats(p, z64, c.n, c.d, labels)
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.PairStats(p, z32, c.n, c.d, labels)
				if err != nil {
					t.Fatalf("%s %+v %s: %v", name, c, loss, err)
				}
				rel := func(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-30) }
				flips := got.Repelled - want.Repelled
				if got.Pairs != want.Pairs || flips*1000 > want.Pairs || -flips*1000 > want.Pairs || rel(got.Total, want.Total) > 1e-4 || rel(got.Repulsive, want.Repulsive) > 1e-4 {
					t.Errorf("%s n %d classes %d %s: %+v, reference %+v", name, c.n, c.classes, loss, got, want)
				}
				if loss != kernels.SupCon && (got.Repelled != 0 || got.Repulsive != 0 || got.RepulsiveShare() != 0) {
					t.Errorf("%s %s repels: %+v", name, loss, got)
				}
				if loss == kernels.SupCon && c.classes == 2 && c.pull > 0 && got.Repelled == 0 {
					t.Errorf("%s: SupCon repels nothing in tight two-class clusters; the case shows nothing", name)
				}
			}
		}
	}
}

// TestRowLosses checks that the per-row terms average to Compute's loss
// and mark the rows without positives.
func TestRowLosses(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	e, err := NewLossEngine(kernels.CPUOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	z64, z32, labels := kerneltest.PulledBatch(rng, 301, 24, 5, 2)
	labels[300] = 99 // a row alone in its class
	for _, loss := range []kernels.Loss{kernels.SupCon, kernels.SINCERE, kernels.EpsSupInfoNCE} {
		p := kernels.Params{Loss: loss, Temperature: 0.1, Epsilon: 0.25, BaseTemperature: 0.07}
		rows, err := e.RowLosses(p, z32, 301, 24, labels)
		if err != nil {
			t.Fatal(err)
		}
		ref, _, _, err := kernels.Reference(p, z64, 301, 24, labels)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for i, v := range rows[:300] {
			if math.IsNaN(v) {
				t.Fatalf("%s: row %d has positives but no term", loss, i)
			}
			sum += v
		}
		if !math.IsNaN(rows[300]) {
			t.Errorf("%s: the lone row's term is %v, want NaN", loss, rows[300])
		}
		if got := sum / 300; math.Abs(got-ref)/math.Abs(ref) > 1e-5 {
			t.Errorf("%s: mean row term %v, reference loss %v", loss, got, ref)
		}
	}
}
