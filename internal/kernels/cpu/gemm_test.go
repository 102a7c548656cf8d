package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// naiveGemm is the textbook triple loop in float64.
func naiveGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				av := a[i*lda+p]
				if transA {
					av = a[p*lda+i]
				}
				bv := b[p*ldb+j]
				if transB {
					bv = b[j*ldb+p]
				}
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = float64(alpha)*s + float64(beta)*float64(c[i*ldc+j])
		}
	}
	return out
}

func TestGemmAllShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	shapes := [][3]int{{1, 1, 1}, {5, 7, 3}, {6, 16, 8}, {13, 33, 300}, {100, 17, 9}, {97, 1100, 70}, {300, 40, 600}, {7, 7, 0}}
	gemms := map[string]*gemm{"portable": newGemm(2, chooseKernels(true), nil), "fast/1": newGemm(1, chooseKernels(false), nil), "fast/3": newGemm(3, chooseKernels(false), nil)}
	for name, g := range gemms {
		for _, sh := range shapes {
			m, n, k := sh[0], sh[1], sh[2]
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, beta := range []float32{0, 1, 0.5} {
					lda, ldb := k+2, n+3
					if tr[0] {
						lda = m + 2
					}
					if tr[1] {
						ldb = k + 3
					}
					ldc := n + 1
					a := randomVec(rng, max(m, k)*lda+1, -1, 1)
					b := randomVec(rng, max(n, k)*ldb+1, -1, 1)
					c := randomVec(rng, m*ldc, -1, 1)
					want := naiveGemm(tr[0], tr[1], m, n, k, 0.7, a, lda, b, ldb, beta, c, ldc)
					before := append([]float32(nil), c...)
					g.Sgemm(tr[0], tr[1], m, n, k, 0.7, a, lda, b, ldb, beta, c, ldc)
					for i := range m {
						for j := range ldc {
							got := c[i*ldc+j]
							if j >= n {
								if got != before[i*ldc+j] {
									t.Fatalf("%s %v %v: wrote outside C", name, sh, tr)
								}
								continue
							}
							if !closeTo(got, float32(want[i*n+j]), 1e-5, 1e-5*float64(k+1)) {
								t.Fatalf("%s %v trans=%v beta=%v: C[%d,%d] = %v, want %v", name, sh, tr, beta, i, j, got, want[i*n+j])
							}
						}
					}
				}
			}
		}
	}
}

func TestGemmDeterministicAcrossWorkers(t *testing.T) {
	if fastKernels() == nil {
		t.Skip("no fast kernels")
	}
	rng := rand.New(rand.NewPCG(33, 34))
	m, n, k := 70, 530, 700
	a, b := randomVec(rng, m*k, -1, 1), randomVec(rng, k*n, -1, 1)
	var ref []float32
	for _, w := range []int{1, 2, 4, 7} {
		c := make([]float32, m*n)
		newGemm(w, chooseKernels(false), nil).Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
		if ref == nil {
			ref = c
			continue
		}
		for i := range c {
			if c[i] != ref[i] {
				t.Fatalf("%d workers differ from 1 at %d", w, i)
			}
		}
	}
}

func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][3]int{{128, 12544, 288}, {512, 512, 512}} {
		m, n, k := sh[0], sh[1], sh[2]
		x, y, c := randomVec(rng, m*k, -1, 1), randomVec(rng, k*n, -1, 1), make([]float32, m*n)
		g := newGemm(0, chooseKernels(false), nil)
		b.Run(fmt.Sprint(sh), func(b *testing.B) {
			for range b.N {
				g.Sgemm(false, false, m, n, k, 1, x, k, y, n, 0, c, n)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
