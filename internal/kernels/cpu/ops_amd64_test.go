//go:build amd64 && !purego

package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomTile draws a tile with the values the sweeps produce: similarities
// in [-span, span], some -Inf (self and padding), labels from a few classes
// and padding columns with label -1.
func randomTile(rng *rand.Rand, nr, nc, lds int, span float32) *tile {
	t := &tile{s: make([]float32, nr*lds), lds: lds, nr: nr, nc: nc, yr: make([]int32, nr), yc: make([]int32, nc)}
	for i := range t.s {
		t.s[i] = (2*rng.Float32() - 1) * span
		if rng.IntN(40) == 0 {
			t.s[i] = negInf32
		}
	}
	for i := range t.yr {
		t.yr[i] = int32(rng.IntN(3))
	}
	for i := range t.yc {
		t.yc[i] = int32(rng.IntN(3))
		if rng.IntN(10) == 0 {
			t.yc[i] = -1
		}
	}
	return t
}

func (t *tile) clone() *tile {
	c := *t
	c.s = append([]float32(nil), t.s...)
	return &c
}

func compareVecs(t *testing.T, what string, got, want []float32, rel, abs float64) {
	t.Helper()
	for i := range want {
		if !closeTo(got[i], want[i], rel, abs) {
			t.Fatalf("%s[%d]: avx2 %g, portable %g", what, i, got[i], want[i])
		}
	}
}

func TestAVX2KernelsMatchPortable(t *testing.T) {
	if fastKernels() == nil {
		t.Skip("no AVX2/FMA on this processor")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 40 {
		nr, nc := 1+rng.IntN(30), 8*(1+rng.IntN(12))
		lds := nc + 8*rng.IntN(3)
		span := []float32{1, 10, 50, 200}[trial%4]
		base := randomTile(rng, nr, nc, lds, span)

		// rowMax is exact.
		mn, mp, wn, wp := make([]float32, nr), make([]float32, nr), make([]float32, nr), make([]float32, nr)
		avx2Ops.rowMax(base, mn, mp)
		portableOps.rowMax(base, wn, wp)
		compareVecs(t, "negMax", mn, wn, 0, 0)
		compareVecs(t, "posMax", mp, wp, 0, 0)

		// rowExpSum with the shifts the forward sweep uses.
		for r := range nr {
			wn[r], wp[r] = max(wn[r], -span), max(wp[r], -span)
		}
		sn, sp, vn, vp := make([]float32, nr), make([]float32, nr), make([]float32, nr), make([]float32, nr)
		avx2Ops.rowExpSum(base, wn, wp, sn, sp)
		portableOps.rowExpSum(base, wn, wp, vn, vp)
		compareVecs(t, "negSum", sn, vn, 1e-5, 1e-30)
		compareVecs(t, "posSum", sp, vp, 1e-5, 1e-30)

		// rowSoftplus around the values u takes (M_i + eps).
		u := randomVec(rng, nr, -span, span)
		a1, a2, b1, b2 := make([]float32, nr), make([]float32, nr), make([]float32, nr), make([]float32, nr)
		avx2Ops.rowSoftplus(base, u, a1, a2)
		portableOps.rowSoftplus(base, u, b1, b2)
		compareVecs(t, "spSum", a1, b1, 1e-5, 1e-30)
		compareVecs(t, "qSum", a2, b2, 1e-5, 1e-30)

		// gradSupCon: br = -L_r <= -max s, so exponents stay <= 0 mostly;
		// some rows have a = 0, b = -Inf as non-anchors do.
		ar, cr := randomVec(rng, nr, 0, 1e-3), randomVec(rng, nr, 0, 1e-3)
		br := randomVec(rng, nr, -2*span, -span)
		ac, cc := randomVec(rng, nc, 0, 1e-3), randomVec(rng, nc, 0, 1e-3)
		bc := randomVec(rng, nc, -2*span, -span)
		ar[0], br[0], cr[0] = 0, negInf32, 0
		bc[0], ac[0], cc[0] = negInf32, 0, 0
		g1, g2 := base.clone(), base.clone()
		avx2Ops.gradSupCon(g1, ar, br, cr, ac, bc, cc)
		portableOps.gradSupCon(g2, ar, br, cr, ac, bc, cc)
		for r := range nr {
			compareVecs(t, "gradSupCon", g1.s[r*lds:r*lds+nc], g2.s[r*lds:r*lds+nc], 2e-5, 1e-9)
		}

		// gradSincere: w = log(q) - M, u = M + eps.
		wr, ur := randomVec(rng, nr, -2*span, -span), randomVec(rng, nr, -span, span)
		wc, uc := randomVec(rng, nc, -2*span, -span), randomVec(rng, nc, -span, span)
		wr[0], wc[0] = negInf32, negInf32
		h1, h2 := base.clone(), base.clone()
		avx2Ops.gradSincere(h1, cr, wr, ur, cc, wc, uc)
		portableOps.gradSincere(h2, cr, wr, ur, cc, wc, uc)
		for r := range nr {
			compareVecs(t, "gradSincere", h1.s[r*lds:r*lds+nc], h2.s[r*lds:r*lds+nc], 2e-5, 1e-9)
		}
	}
}

func TestAVX2GemmMatchesPortable(t *testing.T) {
	if fastKernels() == nil {
		t.Skip("no AVX2/FMA on this processor")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][3]int{{6, 16, 1}, {12, 32, 7}, {48, 48, 128}, {96, 128, 96}, {6, 16, 0}, {18, 64, 33}} {
		m, n, k := sz[0], sz[1], sz[2]
		lda, ldb, ldc := k+3, n+16, n+5
		a := randomVec(rng, m*lda+1, -1, 1)
		b := randomVec(rng, max(k, 1)*ldb, -1, 1)
		for _, acc := range []bool{false, true} {
			c1 := randomVec(rng, m*ldc, -1, 1)
			c2 := append([]float32(nil), c1...)
			gemmAVX2(m, n, k, 0.5, a, lda, b, ldb, c1, ldc, acc)
			gemmPortable(m, n, k, 0.5, a, lda, b, ldb, c2, ldc, acc)
			for i := range m {
				for j := range ldc {
					got, want := c1[i*ldc+j], c2[i*ldc+j]
					if j >= n && got != want {
						t.Fatalf("%v acc=%v: wrote outside C at (%d,%d)", sz, acc, i, j)
					}
					if !closeTo(got, want, 1e-5, 1e-5) {
						t.Fatalf("%v acc=%v: C[%d,%d] = %g, want %g", sz, acc, i, j, got, want)
					}
				}
			}
		}
	}
}

func TestVectorExpAccuracy(t *testing.T) {
	if fastKernels() == nil {
		t.Skip("no AVX2/FMA on this processor")
	}
	// exp through rowExpSum on a 1 x 8 tile, one lane at a time, against
	// math.Exp over the whole range the kernels use.
	tl := &tile{s: make([]float32, 8), lds: 8, nr: 1, nc: 8, yr: []int32{0}, yc: []int32{1, -1, -1, -1, -1, -1, -1, -1}}
	zero := []float32{0}
	var worst float64
	for x := float32(-86.9); x < 88; x += 0.0137 {
		clear(tl.s)
		for i := range tl.s {
			tl.s[i] = negInf32
		}
		tl.s[0] = x
		sum, pos := make([]float32, 1), make([]float32, 1)
		avx2Ops.rowExpSum(tl, zero, zero, sum, pos)
		want := math.Exp(float64(x))
		worst = max(worst, math.Abs(float64(sum[0])-want)/want)
	}
	if worst > 3e-7 {
		t.Errorf("vector exp: worst relative error %.2g over [-87, 88]", worst)
	}
	t.Logf("vector exp: worst relative error %.2g", worst)
}

func TestVectorSoftplusAccuracy(t *testing.T) {
	if fastKernels() == nil {
		t.Skip("no AVX2/FMA on this processor")
	}
	// One positive lane (label 0) holding s, with u = 0: v = -s.
	tl := &tile{s: make([]float32, 8), lds: 8, nr: 1, nc: 8, yr: []int32{0}, yc: []int32{0, 1, 1, 1, 1, 1, 1, 1}}
	u := []float32{0}
	var worstSp, worstQ float64
	for v := float32(-80); v < 80; v += 0.0071 {
		tl.s[0] = -v
		sp, q := make([]float32, 1), make([]float32, 1)
		avx2Ops.rowSoftplus(tl, u, sp, q)
		vv := float64(float32(v))
		wantSp := max(vv, 0) + math.Log1p(math.Exp(-math.Abs(vv)))
		wantQ := 1 / (1 + math.Exp(-vv))
		worstSp = max(worstSp, math.Abs(float64(sp[0])-wantSp)/wantSp)
		worstQ = max(worstQ, math.Abs(float64(q[0])-wantQ)/wantQ)
	}
	if worstSp > 5e-7 || worstQ > 5e-7 {
		t.Errorf("worst relative error: softplus %.2g, sigmoid %.2g", worstSp, worstQ)
	}
	t.Logf("worst relative error: softplus %.2g, sigmoid %.2g", worstSp, worstQ)
}

func TestAVX2NormMatchesPortable(t *testing.T) {
	if fastKernels() == nil {
		t.Skip("no AVX2/FMA on this processor")
	}
	fast := fastKernels().norm(24)
	rng := rand.New(rand.NewPCG(61, 62))
	rows, c := 37, 24
	x, dy := randomVec(rng, rows*c, -2, 2), randomVec(rng, rows*c, -1, 1)
	y := randomVec(rng, rows*c, -1, 1)
	for i := range y {
		y[i] = max(y[i], 0) // a ReLU output: zeros and positives
	}
	vec := func(lo, hi float32) []float32 { return randomVec(rng, c, lo, hi) }
	shift, mean, inv, scale, off, k, ka, kb := vec(-1, 1), vec(-1, 1), vec(0.5, 2), vec(0.5, 2), vec(-1, 1), vec(-1, 1), vec(-1, 1), vec(-1, 1)
	a1, a2, b1, b2 := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
	fast.sums(x, rows, c, shift, a1, b1)
	portableNorm.sums(x, rows, c, shift, a2, b2)
	compareVecs(t, "sums s1", a1, a2, 1e-5, 1e-5)
	compareVecs(t, "sums s2", b1, b2, 1e-5, 1e-5)
	for _, relu := range []bool{false, true} {
		o1, o2 := make([]float32, rows*c), make([]float32, rows*c)
		fast.affine(x, rows, c, scale, off, o1, relu)
		portableNorm.affine(x, rows, c, scale, off, o2, relu)
		compareVecs(t, "affine", o1, o2, 1e-6, 1e-6)
	}
	for _, mask := range [][]float32{nil, y} {
		s1, s2, t1, t2 := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
		fast.backSums(x, dy, mask, rows, c, mean, inv, s1, t1)
		portableNorm.backSums(x, dy, mask, rows, c, mean, inv, s2, t2)
		compareVecs(t, "backSums a", s1, s2, 1e-5, 1e-5)
		compareVecs(t, "backSums b", t1, t2, 1e-5, 1e-5)
		d1, d2 := make([]float32, rows*c), make([]float32, rows*c)
		fast.backApply(x, dy, mask, rows, c, mean, inv, k, ka, kb, d1)
		portableNorm.backApply(x, dy, mask, rows, c, mean, inv, k, ka, kb, d2)
		compareVecs(t, "backApply", d1, d2, 1e-5, 1e-6)
	}
}
