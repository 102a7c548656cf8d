package kernels

import (
	"math"
	"testing"
)

// TestReferencePairStatsByHand works a four-row batch through the gradient
// formulas by hand. Class 0: z0 = z1 = (1, 0), z2 = (0, 1); class 1: z3 =
// (-1, 0); tau = 1. Anchor 0 sees s = 1 (row 1), 0 (row 2), -1 (row 3), so
// SupCon's softmax gives row 1 e/(e + 1 + 1/e) = 0.665, above 1/|P| = 1/2:
// G_01 = c (2 * 0.665 - 1) > 0, repelled; G_02 = c (2/(e + 1 + 1/e) - 1) < 0.
// Anchor 1 mirrors anchor 0; anchor 2 sees 0, 0, 0: G = c (2/3 - 1) < 0.
// c = 1 / (|A| |P|) = 1/6. SINCERE never repels.
func TestReferencePairStatsByHand(t *testing.T) {
	z := []float64{1, 0, 1, 0, 0, 1, -1, 0}
	labels := []int{0, 0, 0, 1}
	e := math.E
	den := e + 1 + 1/e
	c := 1.0 / 6
	g01, g02, g2 := c*(2*e/den-1), c*(2/den-1), c*(2.0/3-1)
	sup, err := ReferencePairStats(Params{Loss: SupCon, Temperature: 1}, z, 4, 2, labels)
	if err != nil {
		t.Fatal(err)
	}
	want := PairStats{Pairs: 6, Repelled: 2, Repulsive: 2 * g01, Total: 2*g01 - 2*g02 - 2*g2}
	if sup.Pairs != want.Pairs || sup.Repelled != want.Repelled || math.Abs(sup.Repulsive-want.Repulsive) > 1e-15 || math.Abs(sup.Total-want.Total) > 1e-15 {
		t.Errorf("SupCon %+v, want %+v", sup, want)
	}
	if f := sup.RepelledFraction(); f != 2.0/6 {
		t.Errorf("repelled fraction %v", f)
	}
	// SINCERE: G_ip = -c sigmoid(M_i - s_ip) with M_i the negatives' LSE.
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	sin, err := ReferencePairStats(Params{Loss: SINCERE, Temperature: 1}, z, 4, 2, labels)
	if err != nil {
		t.Fatal(err)
	}
	total := c * (2*sig(-1-1) + 2*sig(-1-0) + 2*sig(0-0))
	if sin.Pairs != 6 || sin.Repelled != 0 || sin.Repulsive != 0 || math.Abs(sin.Total-total) > 1e-15 || sin.RepulsiveShare() != 0 {
		t.Errorf("SINCERE %+v, want 6 pairs, none repelled, total %v", sin, total)
	}
	if _, err := ReferencePairStats(Params{Loss: SupCon, Temperature: 1}, z, 4, 2, []int{0, 1, 2, 3}); err != ErrNoAnchors {
		t.Errorf("no anchors: %v", err)
	}
}
