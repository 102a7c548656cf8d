//go:build gpuemu

package cudaemu

import (
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

// The kernels of gemm.cu against a float64 reference: every transpose,
// both precisions and both load widths, on shapes of 1, primes and sizes
// that straddle the 128 x 128 tiles and the 16- and 8-deep k stages, with
// leading dimensions wider than the matrices, beta 0 (over a poisoned C),
// 1 and 0.5.

type gemmCase struct {
	m, n, k     int
	alpha, beta float32
}

var gemmCases = []gemmCase{
	{1, 1, 1, 1, 0},
	{3, 5, 0, 1, 0.5}, // k = 0: C = beta C
	{7, 1, 19, 1.5, 1},
	{37, 129, 17, 1, 0},
	{130, 3, 33, 1, 0.5},
	{129, 131, 24, -0.5, 1},
}

// gemmTol is the bound on the relative L2 error per precision.
var gemmTol = map[string]float64{"fp32": 1e-5, "tf32": 2e-3}

func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	errs := errTable{}
	for _, prec := range []string{"fp32", "tf32"} {
		for _, vec := range []string{"v4", "s1"} {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for ci, cs := range gemmCases {
						rev := ci%2 == 1 // alternate the schedules
						name := gemmName(prec, ta, tb, vec)
						testGemm(t, dev{t, rev}, rng, name, cs, ta, tb, vec == "v4", gemmTol[prec], errs)
					}
				}
			}
		}
	}
	errs.log(t)
}

func gemmName(prec string, ta, tb bool, vec string) string {
	tr := func(b bool) string {
		if b {
			return "t"
		}
		return "n"
	}
	return "gemm_" + prec + "_" + tr(ta) + tr(tb) + "_" + vec
}

// testGemm runs one product and checks it.
func testGemm(t *testing.T, d dev, rng *rand.Rand, name string, cs gemmCase, ta, tb, aligned bool, tol float64, errs errTable) {
	t.Helper()
	m, n, k := cs.m, cs.n, cs.k
	// Stored shapes and leading dimensions: for v4 multiples of 4 (16-byte
	// rows) with room to spare, for s1 an odd pad.
	ld := func(cols int) int {
		if aligned {
			return (cols+3)/4*4 + 4
		}
		return cols + 3
	}
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	lda, ldb, ldc := ld(ac), ld(bc), ld(n)
	a := randn(rng, max(ar*lda, 1), 0, 1)
	b := randn(rng, max(br*ldb, 1), 0, 1)
	c0 := randn(rng, m*ldc, 0, 1)
	if cs.beta == 0 {
		c0 = numcheck.NaNs(m * ldc)
	}
	ref := kerneltest.GemmRef(ta, tb, m, n, k, float64(cs.alpha), a, lda, b, ldb, float64(cs.beta), c0, ldc)
	want := make([]float64, 0, m*n)
	for i := range m {
		want = append(want, ref[i*ldc:i*ldc+n]...)
	}
	ab, bb, cb := upload(t, a), upload(t, b), upload(t, c0)
	d.run(name, [3]int{(n + 127) / 128, (m + 127) / 128, 1}, i32(m), i32(n), i32(k), f32(cs.alpha), ptr(ab), i32(lda),
		ptr(bb), i32(ldb), f32(cs.beta), ptr(cb), i32(ldc))
	c := cb.get()
	got := make([]float32, 0, m*n)
	for i := range m {
		got = append(got, c[i*ldc:i*ldc+n]...)
		// the pad columns of C stay as they were
		for j := n; j < ldc; j++ {
			if v, w := c[i*ldc+j], c0[i*ldc+j]; v != w && !(v != v && w != w) {
				t.Fatalf("%s %dx%dx%d: C[%d][%d] outside the matrix changed: %v -> %v", name, m, n, k, i, j, w, v)
			}
		}
	}
	errs.note(name[:9], checkClose(t, sizes("%s %dx%dx%d beta %v %s", name, m, n, k, cs.beta, scheduleName(d.rev)), got, want, tol))
}
