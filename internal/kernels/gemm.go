package kernels

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Blocking of the packed SGEMM (BLIS style): a kc x nc panel of B and an
// mc x kc block of A are packed into micro-panels of 16 columns and 6 rows,
// and the 6x16 micro-kernel sweeps them.
const (
	gemmMR = 6
	gemmNR = 16
	gemmKC = 256
	gemmMC = 96
	gemmNC = 1024
)

// Gemm computes row-major single-precision matrix products on the CPU,
// spread over its workers. Each element of C is summed over k in the same
// order whatever the number of workers, so results are bit-identical across
// machines with the same kernels.
type Gemm struct {
	workers int
	micro   func(k int, a, b, c []float32, ldc int, alpha float32, accumulate bool)
	pool    sync.Pool
}

// NewGemm returns a Gemm with the given number of workers (0: GOMAXPROCS),
// on the assembly micro-kernel where the processor has one, else on gonum.
func NewGemm(workers int, portable bool) *Gemm {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g := &Gemm{workers: workers}
	if !portable {
		g.micro = fastMicro()
	}
	g.pool.New = func() any { return &gemmScratch{} }
	return g
}

// gemmScratch is one worker's packing buffers.
type gemmScratch struct {
	ap, bp []float32
	tile   [gemmMR * gemmNR]float32
}

// Sgemm sets C = alpha op(A) op(B) + beta C, where op(A) is m x k (A is
// k x m, leading dimension lda, when transA) and op(B) is k x n.
func (g *Gemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if g.micro == nil {
		ta, tb := blas.NoTrans, blas.NoTrans
		if transA {
			ta = blas.Trans
		}
		if transB {
			tb = blas.Trans
		}
		if k == 0 {
			scaleRows(c, m, n, ldc, beta)
			return
		}
		gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	workers := g.workers
	if work := 2 * m * n * k; work < 1<<21 {
		workers = 1
	}
	// Split the larger of C's dimensions into whole micro-tiles.
	splitCols := n >= m
	units := (m + gemmMR - 1) / gemmMR
	if splitCols {
		units = (n + gemmNR - 1) / gemmNR
	}
	workers = min(workers, units)
	if workers <= 1 {
		g.serial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := units*w/workers, units*(w+1)/workers
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if splitCols {
				j0, j1 := lo*gemmNR, min(hi*gemmNR, n)
				bOff := j0 * ldb // op(B) columns j0.. start here when transB
				if !transB {
					bOff = j0
				}
				g.serial(transA, transB, m, j1-j0, k, alpha, a, lda, b[bOff:], ldb, beta, c[j0:], ldc)
			} else {
				i0, i1 := lo*gemmMR, min(hi*gemmMR, m)
				aOff := i0 * lda
				if transA {
					aOff = i0
				}
				g.serial(transA, transB, i1-i0, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[i0*ldc:], ldc)
			}
		}()
	}
	wg.Wait()
}

// scaleRows sets C = beta C over m rows of n.
func scaleRows(c []float32, m, n, ldc int, beta float32) {
	if beta == 1 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// serial is the packed product on one goroutine.
func (g *Gemm) serial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if beta != 0 && beta != 1 {
		scaleRows(c, m, n, ldc, beta)
		beta = 1
	}
	if k == 0 {
		scaleRows(c, m, n, ldc, beta)
		return
	}
	s := g.pool.Get().(*gemmScratch)
	defer g.pool.Put(s)
	for jc := 0; jc < n; jc += gemmNC {
		nb := min(gemmNC, n-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kb := min(gemmKC, k-pc)
			s.bp = packB(s.bp, transB, b, ldb, pc, jc, kb, nb)
			accumulate := pc > 0 || beta == 1
			for ic := 0; ic < m; ic += gemmMC {
				mb := min(gemmMC, m-ic)
				s.ap = packA(s.ap, transA, a, lda, ic, pc, mb, kb)
				for jr := 0; jr < nb; jr += gemmNR {
					bPanel := s.bp[jr*kb : (jr+gemmNR)*kb]
					for ir := 0; ir < mb; ir += gemmMR {
						aPanel := s.ap[ir*kb : (ir+gemmMR)*kb]
						ci := (ic+ir)*ldc + jc + jr
						if ir+gemmMR <= mb && jr+gemmNR <= nb {
							g.micro(kb, aPanel, bPanel, c[ci:], ldc, alpha, accumulate)
							continue
						}
						// Edge tile: compute in full, keep the part inside C.
						g.micro(kb, aPanel, bPanel, s.tile[:], gemmNR, alpha, false)
						for i := range min(gemmMR, mb-ir) {
							row := c[ci+i*ldc : ci+i*ldc+min(gemmNR, nb-jr)]
							for j := range row {
								if accumulate {
									row[j] += s.tile[i*gemmNR+j]
								} else {
									row[j] = s.tile[i*gemmNR+j]
								}
							}
						}
					}
				}
			}
		}
	}
}

// packA packs rows ic..ic+mb, columns pc..pc+kb of op(A) into panels of 6
// rows: panel r holds, for each p, A(r*6+0..5, p), zero past the edge.
func packA(dst []float32, trans bool, a []float32, lda, ic, pc, mb, kb int) []float32 {
	panels := (mb + gemmMR - 1) / gemmMR
	dst = grow(dst, panels*gemmMR*kb)
	for pi := range panels {
		out := dst[pi*gemmMR*kb : (pi+1)*gemmMR*kb]
		rows := min(gemmMR, mb-pi*gemmMR)
		for i := range gemmMR {
			if i >= rows {
				for p := range kb {
					out[p*gemmMR+i] = 0
				}
				continue
			}
			r := ic + pi*gemmMR + i
			if trans {
				for p := range kb {
					out[p*gemmMR+i] = a[(pc+p)*lda+r]
				}
			} else {
				row := a[r*lda+pc : r*lda+pc+kb]
				for p, v := range row {
					out[p*gemmMR+i] = v
				}
			}
		}
	}
	return dst
}

// packB packs rows pc..pc+kb, columns jc..jc+nb of op(B) into panels of 16
// columns: panel j holds, for each p, B(p, j*16+0..15), zero past the edge.
func packB(dst []float32, trans bool, b []float32, ldb, pc, jc, kb, nb int) []float32 {
	panels := (nb + gemmNR - 1) / gemmNR
	dst = grow(dst, panels*gemmNR*kb)
	for pj := range panels {
		out := dst[pj*gemmNR*kb : (pj+1)*gemmNR*kb]
		cols := min(gemmNR, nb-pj*gemmNR)
		c0 := jc + pj*gemmNR
		for p := range kb {
			o := out[p*gemmNR : (p+1)*gemmNR]
			if trans {
				for j := range cols {
					o[j] = b[(c0+j)*ldb+pc+p]
				}
			} else {
				copy(o[:cols], b[(pc+p)*ldb+c0:(pc+p)*ldb+c0+cols])
			}
			clear(o[cols:])
		}
	}
	return dst
}
