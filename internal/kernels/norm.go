package kernels

import "math"

// bnBlock is the number of rows each partial sum of the batch norm
// statistics covers (in float32); the blocks are added in float64 in order,
// so the statistics do not depend on the number of workers.
const bnBlock = 1024

// norm returns the batch norm loops for c channels.
func (d *CPUDevice) norm(c int) *normOps {
	if d.portable {
		return &portableNorm
	}
	if ops := fastNorm(c); ops != nil {
		return ops
	}
	return &portableNorm
}

// blockSums runs f over blocks of bnBlock rows, each into its own float32
// partials a and b (c values each), and returns their float64 totals,
// summed in block order.
func (d *CPUDevice) blockSums(rows, c int, f func(r0, r1 int, a, b []float32)) (sa, sb []float64) {
	blocks := (rows + bnBlock - 1) / bnBlock
	pa, pb := make([]float32, blocks*c), make([]float32, blocks*c)
	d.parallel(blocks, bnBlock*c, func(lo, hi int) {
		for bl := lo; bl < hi; bl++ {
			f(bl*bnBlock, min((bl+1)*bnBlock, rows), pa[bl*c:(bl+1)*c], pb[bl*c:(bl+1)*c])
		}
	})
	sa, sb = make([]float64, c), make([]float64, c)
	for bl := range blocks {
		for j := range c {
			sa[j] += float64(pa[bl*c+j])
			sb[j] += float64(pb[bl*c+j])
		}
	}
	return sa, sb
}

// BatchNormTrain normalises each channel of x (rows x c, channels last) by
// its batch mean and variance.
func (d *CPUDevice) BatchNormTrain(rows, c int, x, gamma, beta Buffer, eps, momentum float32, relu bool, runMean, runVar, mean, invStd, y Buffer) {
	X, G, B, RM, RV, M, IS, Y := host(x), host(gamma), host(beta), host(runMean), host(runVar), host(mean), host(invStd), host(y)
	ops := d.norm(c)
	// Sums of x - x[0]: the shift per channel keeps the one-pass variance
	// formula exact enough.
	shift := X[:c]
	s1, s2 := d.blockSums(rows, c, func(r0, r1 int, a, b []float32) {
		ops.sums(X[r0*c:r1*c], r1-r0, c, shift, a, b)
	})
	scale, off := make([]float32, c), make([]float32, c)
	n := float64(rows)
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
	d.affine(ops, rows, c, X, scale, off, relu, Y)
}

// affine sets y = x scale + off (then max(y, 0) with relu), in parallel.
func (d *CPUDevice) affine(ops *normOps, rows, c int, X, scale, off []float32, relu bool, Y []float32) {
	d.parallel(rows, c, func(lo, hi int) {
		ops.affine(X[lo*c:hi*c], hi-lo, c, scale, off, Y[lo*c:hi*c], relu)
	})
}

// BatchNormEval normalises with the running statistics.
func (d *CPUDevice) BatchNormEval(rows, c int, x, gamma, beta, runMean, runVar Buffer, eps float32, relu bool, y Buffer) {
	G, B, RM, RV := host(gamma), host(beta), host(runMean), host(runVar)
	scale, off := make([]float32, c), make([]float32, c)
	for j := range c {
		scale[j] = G[j] / float32(math.Sqrt(float64(RV[j])+float64(eps)))
		off[j] = B[j] - RM[j]*scale[j]
	}
	d.affine(d.norm(c), rows, c, host(x), scale, off, relu, host(y))
}

// BatchNormBackward sets dx and adds dgamma = sum dy xhat, dbeta = sum dy;
// with a fused ReLU (y not nil) dy counts only where y > 0.
func (d *CPUDevice) BatchNormBackward(rows, c int, x, y, gamma, mean, invStd, dy, dx, dgamma, dbeta Buffer) {
	X, G, M, IS, DY, DX, DG, DB := host(x), host(gamma), host(mean), host(invStd), host(dy), host(dx), host(dgamma), host(dbeta)
	var Y []float32
	if y != nil {
		Y = host(y)
	}
	ops := d.norm(c)
	rowsOf := func(v []float32, r0, r1 int) []float32 {
		if v == nil {
			return nil
		}
		return v[r0*c : r1*c]
	}
	sdy, sdyx := d.blockSums(rows, c, func(r0, r1 int, a, b []float32) {
		ops.backSums(X[r0*c:r1*c], DY[r0*c:r1*c], rowsOf(Y, r0, r1), r1-r0, c, M, IS, a, b)
	})
	k, ka, kb := make([]float32, c), make([]float32, c), make([]float32, c)
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
// (n x hw x c, channels last) into y (n x c).
func (d *CPUDevice) GlobalAvgPool(n, hw, c int, x, y Buffer) {
	X, Y := host(x), host(y)
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
func (d *CPUDevice) GlobalAvgPoolBackward(n, hw, c int, dy, dx Buffer) {
	DY, DX := host(dy), host(dx)
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
