//go:build amd64 && !purego

package cpu

import xcpu "golang.org/x/sys/cpu"

// avx2Ops is the assembly implementation of tileOps (ops_amd64.s).
var avx2Ops = tileOps{
	gemm:        gemmAVX2,
	rowMax:      rowMaxFast,
	rowExpSum:   rowExpSumFast,
	rowSoftplus: rowSoftplusFast,
	gradSupCon:  gradSupConFast,
	gradSincere: gradSincereFast,
}

// fastKernels returns the assembly kernels when the processor (and the
// operating system, for the YMM state) supports AVX2 and FMA, else nil.
func fastKernels() *kernelSet {
	if xcpu.X86.HasAVX2 && xcpu.X86.HasFMA {
		return &avx2Kernels
	}
	return nil
}

// avx2Kernels is the assembly kernel set.
var avx2Kernels = kernelSet{
	name:       "avx2-fma",
	tile:       avx2Ops,
	micro:      microAVX2,
	norm:       avx2NormFor,
	interleave: interleaveAVX2,
	addTo:      addToAVX2Go,
}

//go:noescape
func sgemmPanelAVX2(m, k int, alpha float32, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, accumulate bool)

//go:noescape
func rowMaxAVX2(s *float32, lds, nr, nc int, yr, yc *int32, negMax, posMax *float32)

//go:noescape
func rowExpSumAVX2(s *float32, lds, nr, nc int, yr, yc *int32, negShift, posShift, negSum, posSum *float32)

//go:noescape
func rowSoftplusAVX2(s *float32, lds, nr, nc int, yr, yc *int32, u, spSum, qSum *float32)

//go:noescape
func gradSupConAVX2(s *float32, lds, nr, nc int, yr, yc *int32, ar, br, cr, ac, bc, cc *float32)

//go:noescape
func gradSincereAVX2(s *float32, lds, nr, nc int, yr, yc *int32, cr, wr, ur, cc, wc, uc *float32)

// gemmAVX2 checks the bounds the assembly trusts, then runs the 6x16
// micro-kernel over each 16-column panel of C.
func gemmAVX2(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	if m%6 != 0 || n%16 != 0 || k < 0 {
		panic("cpu: gemm needs m % 6 == 0 and n % 16 == 0")
	}
	if m == 0 || n == 0 {
		return
	}
	if len(c) < (m-1)*ldc+n || ldc < n {
		panic("cpu: gemm output too short")
	}
	if gemmEmptyK(m, n, k, c, ldc, accumulate) {
		return
	}
	if len(a) < (m-1)*lda+k || lda < k || len(b) < (k-1)*ldb+n || ldb < n {
		panic("cpu: gemm operands too short")
	}
	for j := 0; j < n; j += 16 {
		sgemmPanelAVX2(m, k, alpha, &a[0], lda, &b[j], ldb, &c[j], ldc, accumulate)
	}
}

func rowMaxFast(t *tile, negMax, posMax []float32) {
	t.check([][]float32{negMax, posMax}, nil)
	if t.nr == 0 || t.nc == 0 {
		return
	}
	rowMaxAVX2(&t.s[0], t.lds, t.nr, t.nc, &t.yr[0], &t.yc[0], &negMax[0], &posMax[0])
}

func rowExpSumFast(t *tile, negShift, posShift, negSum, posSum []float32) {
	t.check([][]float32{negShift, posShift, negSum, posSum}, nil)
	if t.nr == 0 || t.nc == 0 {
		return
	}
	rowExpSumAVX2(&t.s[0], t.lds, t.nr, t.nc, &t.yr[0], &t.yc[0], &negShift[0], &posShift[0], &negSum[0], &posSum[0])
}

func rowSoftplusFast(t *tile, u, spSum, qSum []float32) {
	t.check([][]float32{u, spSum, qSum}, nil)
	if t.nr == 0 || t.nc == 0 {
		return
	}
	rowSoftplusAVX2(&t.s[0], t.lds, t.nr, t.nc, &t.yr[0], &t.yc[0], &u[0], &spSum[0], &qSum[0])
}

func gradSupConFast(t *tile, ar, br, cr, ac, bc, cc []float32) {
	t.check([][]float32{ar, br, cr}, [][]float32{ac, bc, cc})
	if t.nr == 0 || t.nc == 0 {
		return
	}
	gradSupConAVX2(&t.s[0], t.lds, t.nr, t.nc, &t.yr[0], &t.yc[0], &ar[0], &br[0], &cr[0], &ac[0], &bc[0], &cc[0])
}

func gradSincereFast(t *tile, cr, wr, ur, cc, wc, uc []float32) {
	t.check([][]float32{cr, wr, ur}, [][]float32{cc, wc, uc})
	if t.nr == 0 || t.nc == 0 {
		return
	}
	gradSincereAVX2(&t.s[0], t.lds, t.nr, t.nc, &t.yr[0], &t.yc[0], &cr[0], &wr[0], &ur[0], &cc[0], &wc[0], &uc[0])
}

//go:noescape
func sgemmMicroAVX2(k int, a, b, c *float32, ldc int, alpha float32, accumulate bool)

func microAVX2(k int, a, b, c []float32, ldc int, alpha float32, accumulate bool) {
	if len(a) < k*gemmMR || len(b) < k*gemmNR || len(c) < (gemmMR-1)*ldc+gemmNR || ldc < gemmNR {
		panic("cpu: micro-kernel operands too short")
	}
	sgemmMicroAVX2(k, &a[0], &b[0], &c[0], ldc, alpha, accumulate)
}

//go:noescape
func bnSumsAVX2(x *float32, rows, c int, shift, s1, s2 *float32)

//go:noescape
func bnAffineAVX2(x *float32, rows, c int, scale, off, y *float32, relu bool)

//go:noescape
func bnBackSumsAVX2(x, dy, y *float32, rows, c int, mean, invStd, sa, sb *float32)

//go:noescape
func bnBackApplyAVX2(x, dy, y *float32, rows, c int, mean, invStd, k, ka, kb, dx *float32)

// avx2NormFor returns the assembly batch norm loops for c channels where
// they apply (c a multiple of 8), else the portable ones.
func avx2NormFor(c int) *normOps {
	if c%8 != 0 || c == 0 {
		return &portableNorm
	}
	return &avx2Norm
}

var avx2Norm = normOps{
	sums: func(x []float32, rows, c int, shift, s1, s2 []float32) {
		if rows > 0 {
			checkRows(rows, c, x)
			checkRows(1, c, shift, s1, s2)
			bnSumsAVX2(&x[0], rows, c, &shift[0], &s1[0], &s2[0])
		}
	},
	affine: func(x []float32, rows, c int, scale, off, y []float32, relu bool) {
		if rows > 0 {
			checkRows(rows, c, x, y)
			checkRows(1, c, scale, off)
			bnAffineAVX2(&x[0], rows, c, &scale[0], &off[0], &y[0], relu)
		}
	},
	backSums: func(x, dy, y []float32, rows, c int, mean, invStd, sa, sb []float32) {
		if rows > 0 {
			checkRows(rows, c, x, dy)
			checkRows(1, c, mean, invStd, sa, sb)
			bnBackSumsAVX2(&x[0], &dy[0], maskPtr(y, rows, c), rows, c, &mean[0], &invStd[0], &sa[0], &sb[0])
		}
	},
	backApply: func(x, dy, y []float32, rows, c int, mean, invStd, k, ka, kb, dx []float32) {
		if rows > 0 {
			checkRows(rows, c, x, dy, dx)
			checkRows(1, c, mean, invStd, k, ka, kb)
			bnBackApplyAVX2(&x[0], &dy[0], maskPtr(y, rows, c), rows, c, &mean[0], &invStd[0], &k[0], &ka[0], &kb[0], &dx[0])
		}
	},
}

// maskPtr is the ReLU output's address, or nil without one.
func maskPtr(y []float32, rows, c int) *float32 {
	if y == nil {
		return nil
	}
	checkRows(rows, c, y)
	return &y[0]
}

// checkRows panics unless every slice holds rows*c values: the assembly
// trusts these bounds.
func checkRows(rows, c int, s ...[]float32) {
	for _, v := range s {
		if len(v) < rows*c {
			panic("cpu: batch norm operand too short")
		}
	}
}

//go:noescape
func interleave6AVX2(dst, s0, s1, s2, s3, s4, s5 *float32, n int)

// interleaveAVX2 interleaves the first n &^ 7 values of six rows into dst
// (6 values per column) in assembly; it may write 2 values past them.
func interleaveAVX2(dst []float32, src *[gemmMR][]float32, n int) {
	n &^= 7
	if n == 0 {
		return
	}
	if len(dst) < 6*n+2 {
		panic("cpu: interleave destination too short")
	}
	for _, s := range src {
		if len(s) < n {
			panic("cpu: interleave source too short")
		}
	}
	interleave6AVX2(&dst[0], &src[0][0], &src[1][0], &src[2][0], &src[3][0], &src[4][0], &src[5][0], n)
}

//go:noescape
func addToAVX2(dst, src *float32, n int)

// addToAVX2Go sets dst += src: whole vectors of 8 in assembly, the rest in
// Go.
func addToAVX2Go(dst, src []float32) {
	n := len(src)
	if len(dst) < n {
		panic("cpu: addTo destination too short")
	}
	if v := n &^ 7; v > 0 {
		addToAVX2(&dst[0], &src[0], v)
	}
	for i := n &^ 7; i < n; i++ {
		dst[i] += src[i]
	}
}
