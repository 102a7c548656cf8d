package cpu

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// tile is one block of the similarity matrix as the sweeps see it: nr rows of
// nc similarities (row stride lds) between the rows with labels yr and the
// columns with labels yc. Labels are dense class indices; a padding column
// has label -1, which matches no row. nc is a multiple of 8.
type tile struct {
	s      []float32
	lds    int
	nr, nc int
	yr, yc []int32
}

// check panics when the tile's slices are too short for its sizes: the
// assembly kernels trust these bounds.
func (t *tile) check(rowArrays, colArrays [][]float32) {
	if t.nr < 0 || t.nc < 0 || t.nc%8 != 0 || t.lds < t.nc {
		panic(fmt.Sprintf("kernels: bad tile %d x %d (stride %d)", t.nr, t.nc, t.lds))
	}
	if t.nr == 0 {
		return
	}
	if len(t.s) < (t.nr-1)*t.lds+t.nc || len(t.yr) < t.nr || len(t.yc) < t.nc {
		panic("cpu: tile slices shorter than its sizes")
	}
	for _, a := range rowArrays {
		if len(a) < t.nr {
			panic("cpu: row array shorter than the tile")
		}
	}
	for _, a := range colArrays {
		if len(a) < t.nc {
			panic("cpu: column array shorter than the tile")
		}
	}
}

// tileOps is the set of primitives the fused loss is built from. There are
// two implementations with the same semantics: portable Go (portableOps)
// and, on amd64 with AVX2 and FMA, assembly (see ops_amd64.go).
type tileOps struct {
	// gemm sets C = alpha A B (accumulate: C += alpha A B) for row-major
	// A (m x k), B (k x n), C (m x n); m is a multiple of 6 and n of 16.
	gemm func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool)
	// rowMax sets negMax[r] and posMax[r] to the largest similarity of row r
	// over its negatives (yc != yr) and positives (yc == yr); -Inf if none.
	rowMax func(t *tile, negMax, posMax []float32)
	// rowExpSum sets negSum[r] = sum over negatives of exp(s - negShift[r])
	// and posSum[r] likewise over the positives with posShift[r].
	rowExpSum func(t *tile, negShift, posShift, negSum, posSum []float32)
	// rowSoftplus sums over the positives of row r that are not -Inf, with
	// v = u[r] - s: spSum[r] = sum softplus(v), qSum[r] = sum sigmoid(v).
	rowSoftplus func(t *tile, u, spSum, qSum []float32)
	// gradSupCon overwrites each similarity s of row r, column c with
	//   ar[r] exp(s + br[r]) + ac[c] exp(s + bc[c]) - [yc == yr] (cr[r] + cc[c]).
	gradSupCon func(t *tile, ar, br, cr, ac, bc, cc []float32)
	// gradSincere overwrites each similarity s of row r, column c with
	//   cr[r] exp(s + wr[r]) + cc[c] exp(s + wc[c])               for a negative,
	//   -cr[r] sigmoid(ur[r] - s) - cc[c] sigmoid(uc[c] - s)       for a positive.
	gradSincere func(t *tile, cr, wr, ur, cc, wc, uc []float32)
}

// portableOps is the pure-Go implementation of tileOps, for every platform.
var portableOps = tileOps{
	gemm:        gemmPortable,
	rowMax:      rowMaxPortable,
	rowExpSum:   rowExpSumPortable,
	rowSoftplus: rowSoftplusPortable,
	gradSupCon:  gradSupConPortable,
	gradSincere: gradSincerePortable,
}

func gemmPortable(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	if m == 0 || n == 0 || gemmEmptyK(m, n, k, c, ldc, accumulate) {
		return
	}
	var beta float32
	if accumulate {
		beta = 1
	}
	gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, alpha, a[:(m-1)*lda+k], lda, b[:(k-1)*ldb+n], ldb, beta, c[:(m-1)*ldc+n], ldc)
}

// gemmEmptyK handles a product with k = 0, C = 0 (or C unchanged when
// accumulating), and reports whether it did.
func gemmEmptyK(m, n, k int, c []float32, ldc int, accumulate bool) bool {
	if k != 0 {
		return false
	}
	if !accumulate {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
	}
	return true
}

// negInf32 is float32 -Inf.
var negInf32 = float32(math.Inf(-1))

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

func rowMaxPortable(t *tile, negMax, posMax []float32) {
	t.check([][]float32{negMax, posMax}, nil)
	for r := range t.nr {
		row := t.s[r*t.lds : r*t.lds+t.nc]
		mn, mp := negInf32, negInf32
		for c, v := range row {
			if t.yc[c] == t.yr[r] {
				mp = max(mp, v)
			} else {
				mn = max(mn, v)
			}
		}
		negMax[r], posMax[r] = mn, mp
	}
}

func rowExpSumPortable(t *tile, negShift, posShift, negSum, posSum []float32) {
	t.check([][]float32{negShift, posShift, negSum, posSum}, nil)
	for r := range t.nr {
		row := t.s[r*t.lds : r*t.lds+t.nc]
		var sn, sp float32
		for c, v := range row {
			if t.yc[c] == t.yr[r] {
				sp += exp32(v - posShift[r])
			} else {
				sn += exp32(v - negShift[r])
			}
		}
		negSum[r], posSum[r] = sn, sp
	}
}

func rowSoftplusPortable(t *tile, u, spSum, qSum []float32) {
	t.check([][]float32{u, spSum, qSum}, nil)
	for r := range t.nr {
		row := t.s[r*t.lds : r*t.lds+t.nc]
		var sp, q float32
		for c, s := range row {
			if t.yc[c] != t.yr[r] || s == negInf32 {
				continue
			}
			v := float64(u[r] - s)
			e := math.Exp(-math.Abs(v))
			sp += float32(max(v, 0) + math.Log1p(e))
			if v >= 0 {
				q += float32(1 / (1 + e))
			} else {
				q += float32(e / (1 + e))
			}
		}
		spSum[r], qSum[r] = sp, q
	}
}

func gradSupConPortable(t *tile, ar, br, cr, ac, bc, cc []float32) {
	t.check([][]float32{ar, br, cr}, [][]float32{ac, bc, cc})
	for r := range t.nr {
		row := t.s[r*t.lds : r*t.lds+t.nc]
		for c, s := range row {
			h := ar[r]*exp32(s+br[r]) + ac[c]*exp32(s+bc[c])
			if t.yc[c] == t.yr[r] {
				h -= cr[r] + cc[c]
			}
			row[c] = h
		}
	}
}

func gradSincerePortable(t *tile, cr, wr, ur, cc, wc, uc []float32) {
	t.check([][]float32{cr, wr, ur}, [][]float32{cc, wc, uc})
	for r := range t.nr {
		row := t.s[r*t.lds : r*t.lds+t.nc]
		for c, s := range row {
			if t.yc[c] == t.yr[r] {
				row[c] = -cr[r]/(1+exp32(s-ur[r])) - cc[c]/(1+exp32(s-uc[c]))
			} else {
				row[c] = cr[r]*exp32(s+wr[r]) + cc[c]*exp32(s+wc[c])
			}
		}
	}
}
