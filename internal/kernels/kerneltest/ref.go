package kerneltest

import (
	"math"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

// The float64 references the suite checks the devices against: the plain
// loops of each definition, nothing shared with any backend.

// GemmRef returns C = alpha op(A) op(B) + beta C over the whole of C's
// buffer (values outside the m x n matrix unchanged). The emulated CUDA
// kernels' own tests check against it too.
func GemmRef(transA, transB bool, m, n, k int, alpha float64, a []float32, lda int, b []float32, ldb int, beta float64, c []float32, ldc int) []float64 {
	out := numcheck.Float64s(c)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			v := alpha * s
			if beta != 0 {
				v += beta * float64(c[i*ldc+j])
			}
			out[i*ldc+j] = v
		}
	}
	return out
}

// ConvRef returns the convolution y of x (N x H x W x C) with w
// (R x S x C x K) and, for output gradient dy, dL/dx and dL/dw.
func ConvRef(g kernels.ConvGeom, x, w, dy []float32) (y, dx, dw []float64) {
	ho, wo := g.OutH(), g.OutW()
	y, dx, dw = make([]float64, g.OutLen()), make([]float64, g.InLen()), make([]float64, g.FilterLen())
	for n := range g.N {
		for oh := range ho {
			for ow := range wo {
				at := ((n*ho+oh)*wo + ow) * g.K
				out, d := y[at:at+g.K], dy[at:at+g.K]
				for r := range g.R {
					ih := oh*g.Stride - g.Pad + r
					if ih < 0 || ih >= g.H {
						continue
					}
					for s := range g.S {
						iw := ow*g.Stride - g.Pad + s
						if iw < 0 || iw >= g.W {
							continue
						}
						for c := range g.C {
							xi := ((n*g.H+ih)*g.W+iw)*g.C + c
							wi := ((r*g.S+s)*g.C + c) * g.K
							xv := float64(x[xi])
							var sx float64
							for k, wv := range w[wi : wi+g.K] {
								out[k] += xv * float64(wv)
								sx += float64(d[k]) * float64(wv)
								dw[wi+k] += float64(d[k]) * xv
							}
							dx[xi] += sx
						}
					}
				}
			}
		}
	}
	return y, dx, dw
}

// PoolRef returns the global average pool y (N x C) of x (N x HW x C) and,
// for output gradient dy, dL/dx. The emulated CUDA kernels' own tests check
// against it too.
func PoolRef(n, hw, c int, x, dy []float32) (y, dx []float64) {
	y, dx = make([]float64, n*c), make([]float64, n*hw*c)
	for i := range n {
		for p := range hw {
			for j := range c {
				y[i*c+j] += float64(x[(i*hw+p)*c+j]) / float64(hw)
				dx[(i*hw+p)*c+j] = float64(dy[i*c+j]) / float64(hw)
			}
		}
	}
	return y, dx
}

// bnRef is batch norm's training forward pass: per channel, the batch mean
// and biased variance, y = gamma xhat + beta (then the ReLU).
func bnRef(rows, c int, x, gamma, beta []float32, eps float64, relu bool) (y, mean, variance []float64) {
	y, mean, variance = make([]float64, rows*c), make([]float64, c), make([]float64, c)
	for ch := range c {
		var s float64
		for r := range rows {
			s += float64(x[r*c+ch])
		}
		mean[ch] = s / float64(rows)
		var q float64
		for r := range rows {
			d := float64(x[r*c+ch]) - mean[ch]
			q += d * d
		}
		variance[ch] = q / float64(rows)
		inv := 1 / math.Sqrt(variance[ch]+eps)
		for r := range rows {
			v := float64(gamma[ch])*(float64(x[r*c+ch])-mean[ch])*inv + float64(beta[ch])
			if relu {
				v = max(v, 0)
			}
			y[r*c+ch] = v
		}
	}
	return y, mean, variance
}

// bnBackRef is batch norm's training backward pass for output gradient dy
// (masked where the fused ReLU's output y is zero when relu is set).
func bnBackRef(rows, c int, x, gamma, dy []float32, y []float64, eps float64, relu bool) (dx, dgamma, dbeta []float64) {
	_, mean, variance := bnRef(rows, c, x, gamma, make([]float32, c), eps, false)
	dx, dgamma, dbeta = make([]float64, rows*c), make([]float64, c), make([]float64, c)
	n := float64(rows)
	for ch := range c {
		inv := 1 / math.Sqrt(variance[ch]+eps)
		g := func(r int) float64 {
			if relu && y[r*c+ch] <= 0 {
				return 0
			}
			return float64(dy[r*c+ch])
		}
		var sg, sgx float64
		for r := range rows {
			xh := (float64(x[r*c+ch]) - mean[ch]) * inv
			sg += g(r)
			sgx += g(r) * xh
		}
		dbeta[ch], dgamma[ch] = sg, sgx
		for r := range rows {
			xh := (float64(x[r*c+ch]) - mean[ch]) * inv
			dx[r*c+ch] = float64(gamma[ch]) * inv * (g(r) - sg/n - xh*sgx/n)
		}
	}
	return dx, dgamma, dbeta
}

// SoftmaxCERef returns the mean cross entropy of the rows of logits and its
// gradient. The emulated CUDA kernels' own tests check against it too.
func SoftmaxCERef(rows, classes int, logits []float32, labels []int) (float64, []float64) {
	grad := make([]float64, rows*classes)
	var total float64
	for r := range rows {
		row := logits[r*classes : (r+1)*classes]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(s)
		total += lse - float64(row[labels[r]])
		for j, v := range row {
			p := math.Exp(float64(v) - lse)
			if j == labels[r] {
				p--
			}
			grad[r*classes+j] = p / float64(rows)
		}
	}
	return total / float64(rows), grad
}

// l2Ref normalises the rows of x and returns the norms too.
func l2Ref(rows, cols int, x []float32) (y, norms []float64) {
	y, norms = make([]float64, rows*cols), make([]float64, rows)
	for r := range rows {
		var s float64
		for _, v := range x[r*cols : (r+1)*cols] {
			s += float64(v) * float64(v)
		}
		norms[r] = max(math.Sqrt(s), 1e-12)
		for j, v := range x[r*cols : (r+1)*cols] {
			y[r*cols+j] = float64(v) / norms[r]
		}
	}
	return y, norms
}
