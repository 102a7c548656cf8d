package cpu

import (
	"math"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/fused"
)

// bnBlock is the number of rows each partial sum of the batch norm
// statistics covers (in float32); the blocks are added in float64 in order,
// so the statistics do not depend on the number of workers.
const bnBlock = 1024

// blockSums runs f over blocks of bnBlock rows, each into its own float32
// partials a and b (c values each), and returns their float64 totals,
// summed in block order.
func (d *Device) blockSums(rows, c int, f func(r0, r1 int, a, b []float32)) (sa, sb []float64) {
	blocks := (rows + bnBlock - 1) / bnBlock
	d.bnPartA = fused.Grow(&d.meter, d.bnPartA, blocks*c)
	d.bnPartB = fused.Grow(&d.meter, d.bnPartB, blocks*c)
	pa, pb := d.bnPartA, d.bnPartB
	clear(pa)
	clear(pb)
	d.parallel(blocks, bnBlock*c, func(lo, hi int) {
		for bl := lo; bl < hi; bl++ {
			f(bl*bnBlock, min((bl+1)*bnBlock, rows), pa[bl*c:(bl+1)*c], pb[bl*c:(bl+1)*c])
		}
	})
	d.bnSumA = fused.Grow(&d.meter, d.bnSumA, c)
	d.bnSumB = fused.Grow(&d.meter, d.bnSumB, c)
	sa, sb = d.bnSumA, d.bnSumB
	clear(sa)
	clear(sb)
	for bl := range blocks {
		for j := range c {
			sa[j] += float64(pa[bl*c+j])
			sb[j] += float64(pb[bl*c+j])
		}
	}
	return sa, sb
}

// coefs returns k per-channel float32 scratch arrays of c values.
func (d *Device) coefs(k, c int) [][]float32 {
	d.bnCoef = fused.Grow(&d.meter, d.bnCoef, k*c)
	out := make([][]float32, k)
	for i := range out {
		out[i] = d.bnCoef[i*c : (i+1)*c]
	}
	return out
}

// BatchNormTrain normalises each channel of a.X (rows x c, channels last)
// by its batch mean and variance.
func (d *Device) BatchNormTrain(a kernels.BatchNorm) {
	if !d.begin("batch norm", kernels.Sizes(a.Sizes), a.Check(true), a.X, a.Gamma, a.Beta, a.RunMean, a.RunVar, a.Mean, a.InvStd, a.Y) {
		return
	}
	rows, c := a.Rows, a.C
	X, G, B, RM, RV, M, IS, Y := f32(a.X), f32(a.Gamma), f32(a.Beta), f32(a.RunMean), f32(a.RunVar), f32(a.Mean), f32(a.InvStd), f32(a.Y)
	ops := d.ks.norm(c)
	// Sums of x - x[0]: the shift per channel keeps the one-pass variance
	// formula exact enough.
	shift := X[:c]
	s1, s2 := d.blockSums(rows, c, func(r0, r1 int, pa, pb []float32) {
		ops.sums(X[r0*c:r1*c], r1-r0, c, shift, pa, pb)
	})
	co := d.coefs(2, c)
	scale, off := co[0], co[1]
	n := float64(rows)
	eps, momentum := a.Eps, a.Momentum
	for j := range c {
		m1 := s1[j] / n
		v := max(s2[j]/n-m1*m1, 0)
		mu := float64(shift[j]) + m1
		is := 1 / math.Sqrt(v+float64(eps))
		M[j], IS[j] = float32(mu), float32(is)
		unbiased := v
		if rows > 1 {
			unbiased = v * n / (n - 1)
		}
		RM[j] = (1-momentum)*RM[j] + momentum*float32(mu)
		RV[j] = (1-momentum)*RV[j] + momentum*float32(unbiased)
		scale[j] = float32(is) * G[j]
		off[j] = B[j] - float32(mu)*scale[j]
	}
	d.affine(ops, rows, c, X, scale, off, a.ReLU, Y)
}

// affine sets y = x scale + off (then max(y, 0) with relu), in parallel.
func (d *Device) affine(ops *normOps, rows, c int, X, scale, off []float32, relu bool, Y []float32) {
	d.parallel(rows, c, func(lo, hi int) {
		ops.affine(X[lo*c:hi*c], hi-lo, c, scale, off, Y[lo*c:hi*c], relu)
	})
}

// BatchNormEval normalises with the running statistics.
func (d *Device) BatchNormEval(a kernels.BatchNorm) {
	if !d.begin("batch norm (evaluation)", kernels.Sizes(a.Sizes), a.Check(false), a.X, a.Gamma, a.Beta, a.RunMean, a.RunVar, a.Y) {
		return
	}
	c := a.C
	G, B, RM, RV := f32(a.Gamma), f32(a.Beta), f32(a.RunMean), f32(a.RunVar)
	co := d.coefs(2, c)
	scale, off := co[0], co[1]
	for j := range c {
		scale[j] = G[j] / float32(math.Sqrt(float64(RV[j])+float64(a.Eps)))
		off[j] = B[j] - RM[j]*scale[j]
	}
	d.affine(d.ks.norm(c), a.Rows, c, f32(a.X), scale, off, a.ReLU, f32(a.Y))
}

// BatchNormBackward sets dx and adds dgamma = sum dy xhat, dbeta = sum dy;
// with a fused ReLU (y not nil) dy counts only where y > 0.
func (d *Device) BatchNormBackward(a kernels.BatchNormGrad) {
	if !d.begin("batch norm backward", kernels.Sizes(a.Sizes), a.Check(), a.X, a.Y, a.Gamma, a.Mean, a.InvStd, a.DY, a.DX, a.DGamma, a.DBeta) {
		return
	}
	rows, c := a.Rows, a.C
	X, G, M, IS, DY, DX, DG, DB := f32(a.X), f32(a.Gamma), f32(a.Mean), f32(a.InvStd), f32(a.DY), f32(a.DX), f32(a.DGamma), f32(a.DBeta)
	Y := f32(a.Y) // nil without a fused ReLU
	ops := d.ks.norm(c)
	rowsOf := func(v []float32, r0, r1 int) []float32 {
		if v == nil {
			return nil
		}
		return v[r0*c : r1*c]
	}
	sdy, sdyx := d.blockSums(rows, c, func(r0, r1 int, pa, pb []float32) {
		ops.backSums(X[r0*c:r1*c], DY[r0*c:r1*c], rowsOf(Y, r0, r1), r1-r0, c, M, IS, pa, pb)
	})
	co := d.coefs(3, c)
	k, ka, kb := co[0], co[1], co[2]
	n := float64(rows)
	for j := range c {
		DB[j] += float32(sdy[j])
		DG[j] += float32(sdyx[j])
		k[j] = G[j] * IS[j]
		ka[j] = float32(sdy[j] / n)
		kb[j] = float32(sdyx[j] / n)
	}
	d.parallel(rows, c, func(lo, hi int) {
		ops.backApply(X[lo*c:hi*c], DY[lo*c:hi*c], rowsOf(Y, lo, hi), hi-lo, c, M, IS, k, ka, kb, DX[lo*c:hi*c])
	})
}

// reluMask returns g where the ReLU output y is positive, else 0, without a
// branch (y is never negative).
func reluMask(y, g float32) float32 {
	b := math.Float32bits(y)
	keep := -((b | -b) >> 31)
	return math.Float32frombits(math.Float32bits(g) & keep)
}

// GlobalAvgPool averages each channel over the hw pixels of each image
// (n x hw x c, channels last) into y (n x c), summing in float64.
func (d *Device) GlobalAvgPool(n, hw, c int, x, y kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("x", x, n*hw*c), kernels.Need("y", y, n*c))
	if !d.begin("global average pool", kernels.RowsCols(n*hw, c), err, x, y) {
		return
	}
	X, Y := f32(x), f32(y)
	d.parallel(n, hw*c, func(lo, hi int) {
		acc := make([]float64, c)
		for i := lo; i < hi; i++ {
			clear(acc)
			for p := range hw {
				for j, v := range X[(i*hw+p)*c : (i*hw+p+1)*c] {
					acc[j] += float64(v)
				}
			}
			for j := range c {
				Y[i*c+j] = float32(acc[j] / float64(hw))
			}
		}
	})
}

// GlobalAvgPoolBackward spreads dy / hw over every pixel.
func (d *Device) GlobalAvgPoolBackward(n, hw, c int, dy, dx kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("dy", dy, n*c), kernels.Need("dx", dx, n*hw*c))
	if !d.begin("global average pool backward", kernels.RowsCols(n*hw, c), err, dy, dx) {
		return
	}
	DY, DX := f32(dy), f32(dx)
	d.parallel(n, hw*c, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for p := range hw {
				row := DX[(i*hw+p)*c : (i*hw+p+1)*c]
				for j := range row {
					row[j] = DY[i*c+j] / float32(hw)
				}
			}
		}
	})
}
