package cpu

import (
	"runtime"
	"sync"

	"github.com/sincere-ml/sincere/internal/kernels/fused"

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

// gemm computes row-major single-precision matrix products on the CPU,
// spread over its workers: a packed SGEMM (BLIS style) whose operands are
// packed by functions, so that a convolution packs straight from its
// tensors. Each element of C is summed over k in the same order whatever the
// number of workers, so results are bit-identical across worker counts.
type gemm struct {
	workers int
	ks      *kernelSet
	meter   *fused.Meter
	scratch []*gemmScratch // one per worker
}

// newGemm returns a gemm with the given number of workers (0: GOMAXPROCS)
// on a kernel set, counting its scratch in meter (which may be nil).
func newGemm(workers int, ks *kernelSet, meter *fused.Meter) *gemm {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g := &gemm{workers: workers, ks: ks, meter: meter}
	for range workers {
		g.scratch = append(g.scratch, &gemmScratch{})
	}
	return g
}

// gemmScratch is one worker's packing buffers.
type gemmScratch struct {
	ap, bp []float32
	tile   [gemmMR * gemmNR]float32
}

// gemmJob is a product C (+)= alpha op(A) op(B) of m x k by k x n, given by
// the functions that pack its operands: packA writes rows ic..ic+mb and
// columns pc..pc+kb of op(A) as panels of 6 rows (for each p, 6 values,
// zeros past row m), packB rows pc..pc+kb and columns jc..jc+nb of op(B) as
// panels of 16 columns. Packing straight from a tensor (a convolution's
// patches, say) saves materialising the matrix.
type gemmJob struct {
	m, n, k      int
	alpha        float32
	accumulate   bool
	packA, packB func(dst []float32, i0, p0, rows, depth int)
	c            []float32
	ldc          int
}

// run computes rows [i0, i1) and columns [j0, j1) of the job's C on one
// goroutine, with worker w's scratch.
func (g *gemm) run(w int, job *gemmJob, i0, i1, j0, j1 int) { g.runK(w, job, i0, i1, j0, j1, 0, job.k) }

// runK is run over the part [k0, k1) of the sum.
func (g *gemm) runK(w int, job *gemmJob, i0, i1, j0, j1, k0, k1 int) {
	s := g.scratch[w]
	for jc := j0; jc < j1; jc += gemmNC {
		nb := min(gemmNC, j1-jc)
		for pc := k0; pc < k1; pc += gemmKC {
			kb := min(gemmKC, k1-pc)
			s.bp = fused.Grow(g.meter, s.bp, (nb+gemmNR-1)/gemmNR*gemmNR*kb)
			job.packB(s.bp, pc, jc, kb, nb)
			accumulate := pc > k0 || job.accumulate
			for ic := i0; ic < i1; ic += gemmMC {
				mb := min(gemmMC, i1-ic)
				s.ap = fused.Grow(g.meter, s.ap, (mb+gemmMR-1)/gemmMR*gemmMR*kb)
				job.packA(s.ap, ic, pc, mb, kb)
				g.sweep(s, job, ic, jc, mb, nb, kb, accumulate)
			}
		}
	}
}

// sweep runs the micro-kernel over the packed block.
func (g *gemm) sweep(s *gemmScratch, job *gemmJob, ic, jc, mb, nb, kb int, accumulate bool) {
	ldc := job.ldc
	for jr := 0; jr < nb; jr += gemmNR {
		bPanel := s.bp[jr*kb : (jr+gemmNR)*kb]
		for ir := 0; ir < mb; ir += gemmMR {
			aPanel := s.ap[ir*kb : (ir+gemmMR)*kb]
			ci := (ic+ir)*ldc + jc + jr
			if ir+gemmMR <= mb && jr+gemmNR <= nb {
				g.ks.micro(kb, aPanel, bPanel, job.c[ci:], ldc, job.alpha, accumulate)
				continue
			}
			// Edge tile: compute in full, keep the part inside C.
			g.ks.micro(kb, aPanel, bPanel, s.tile[:], gemmNR, job.alpha, false)
			for i := range min(gemmMR, mb-ir) {
				row := job.c[ci+i*ldc : ci+i*ldc+min(gemmNR, nb-jr)]
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

// parallel runs a job over the workers, splitting C's rows (in multiples of
// rowUnit, itself a multiple of 6, when splitRows) or columns (in multiples
// of 16). Each element is still summed over k in one fixed order.
func (g *gemm) parallel(job *gemmJob, splitRows bool, rowUnit int) {
	if job.m == 0 || job.n == 0 {
		return
	}
	if job.k == 0 {
		if !job.accumulate {
			scaleRows(job.c, job.m, job.n, job.ldc, 0)
		}
		return
	}
	units := (job.n + gemmNR - 1) / gemmNR
	if splitRows {
		units = (job.m + rowUnit - 1) / rowUnit
	}
	workers := min(g.workers, units)
	if 2*job.m*job.n*job.k < 1<<21 {
		workers = 1
	}
	if workers <= 1 {
		g.run(0, job, 0, job.m, 0, job.n)
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
			if splitRows {
				g.run(w, job, lo*rowUnit, min(hi*rowUnit, job.m), 0, job.n)
			} else {
				g.run(w, job, 0, job.m, lo*gemmNR, min(hi*gemmNR, job.n))
			}
		}()
	}
	wg.Wait()
}

// gemmChunkK is the length of the chunks of k that parallelK sums
// separately; fixed, so that the result does not depend on the workers.
const gemmChunkK = 8192

// parallelK runs a job with a long k and a small C: chunks of k are
// multiplied on any worker into partial products, which are then added to C
// in chunk order. Every worker packs only its own chunks.
func (g *gemm) parallelK(job *gemmJob, parts []float32) []float32 {
	chunks := (job.k + gemmChunkK - 1) / gemmChunkK
	mn := job.m * job.n
	parts = fused.Grow(g.meter, parts, chunks*mn)
	var wg sync.WaitGroup
	var next sync.Mutex
	nextChunk := 0
	for w := range min(g.workers, chunks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				ch := nextChunk
				nextChunk++
				next.Unlock()
				if ch >= chunks {
					return
				}
				sub := *job
				sub.c, sub.ldc, sub.accumulate = parts[ch*mn:(ch+1)*mn], job.n, false
				g.runK(w, &sub, 0, job.m, 0, job.n, ch*gemmChunkK, min((ch+1)*gemmChunkK, job.k))
			}
		}()
	}
	wg.Wait()
	for i := range job.m {
		row := job.c[i*job.ldc : i*job.ldc+job.n]
		for j := range row {
			v := parts[i*job.n+j]
			for ch := 1; ch < chunks; ch++ {
				v += parts[ch*mn+i*job.n+j]
			}
			if job.accumulate {
				row[j] += v
			} else {
				row[j] = v
			}
		}
	}
	return parts
}

// matrixPackA returns the packer of op(A) for a row-major A.
func matrixPackA(trans bool, a []float32, lda int) func(dst []float32, ic, pc, mb, kb int) {
	return func(dst []float32, ic, pc, mb, kb int) {
		panels := (mb + gemmMR - 1) / gemmMR
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
					for p, v := range a[r*lda+pc : r*lda+pc+kb] {
						out[p*gemmMR+i] = v
					}
				}
			}
		}
	}
}

// matrixPackB returns the packer of op(B) for a row-major B.
func matrixPackB(trans bool, b []float32, ldb int) func(dst []float32, pc, jc, kb, nb int) {
	return func(dst []float32, pc, jc, kb, nb int) {
		panels := (nb + gemmNR - 1) / gemmNR
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
	}
}

// Sgemm sets C = alpha op(A) op(B) + beta C, where op(A) is m x k (A is
// k x m, leading dimension lda, when transA) and op(B) is k x n.
func (g *gemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if g.ks.portable() && k > 0 {
		ta, tb := blas.NoTrans, blas.NoTrans
		if transA {
			ta = blas.Trans
		}
		if transB {
			tb = blas.Trans
		}
		gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if beta != 0 && beta != 1 {
		scaleRows(c, m, n, ldc, beta)
		beta = 1
	}
	job := &gemmJob{m: m, n: n, k: k, alpha: alpha, accumulate: beta == 1,
		packA: matrixPackA(transA, a, lda), packB: matrixPackB(transB, b, ldb), c: c, ldc: ldc}
	g.parallel(job, n < m, gemmMR)
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

// microPortable is the 6x16 micro-kernel in Go: C = alpha A B (+ C).
func microPortable(k int, a, b, c []float32, ldc int, alpha float32, accumulate bool) {
	var acc [gemmMR * gemmNR]float32
	for p := range k {
		ap, bp := a[p*gemmMR:(p+1)*gemmMR], b[p*gemmNR:(p+1)*gemmNR]
		for i, av := range ap {
			row := acc[i*gemmNR : (i+1)*gemmNR]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
	}
	for i := range gemmMR {
		row := c[i*ldc : i*ldc+gemmNR]
		for j := range row {
			if accumulate {
				row[j] += alpha * acc[i*gemmNR+j]
			} else {
				row[j] = alpha * acc[i*gemmNR+j]
			}
		}
	}
}
