package cpu

// normOps are the row loops of batch norm: statistics, the scale and shift
// (with an optional ReLU), and the two passes of the gradient. Rows have c
// channels; per-channel sums are float32 over the rows given (callers pass
// blocks and add the blocks in float64). The assembly versions need c to be
// a multiple of 8.
type normOps struct {
	// sums adds x - shift and its square, per channel, to s1 and s2.
	sums func(x []float32, rows, c int, shift, s1, s2 []float32)
	// affine sets y = x scale + off, then max(y, 0) with relu.
	affine func(x []float32, rows, c int, scale, off, y []float32, relu bool)
	// backSums adds g and g xh per channel to sa and sb, where g is dy
	// (zero where y == 0, when y is not nil) and xh = (x - mean) invStd.
	backSums func(x, dy, y []float32, rows, c int, mean, invStd, sa, sb []float32)
	// backApply sets dx = k (g - ka - xh kb).
	backApply func(x, dy, y []float32, rows, c int, mean, invStd, k, ka, kb, dx []float32)
}

var portableNorm = normOps{sums: sumsPortable, affine: affinePortable, backSums: backSumsPortable, backApply: backApplyPortable}

func sumsPortable(x []float32, rows, c int, shift, s1, s2 []float32) {
	for r := range rows {
		for j, v := range x[r*c : (r+1)*c] {
			d := v - shift[j]
			s1[j] += d
			s2[j] += d * d
		}
	}
}

func affinePortable(x []float32, rows, c int, scale, off, y []float32, relu bool) {
	for r := range rows {
		yr := y[r*c : (r+1)*c]
		for j, v := range x[r*c : (r+1)*c] {
			yr[j] = v*scale[j] + off[j]
			if relu {
				yr[j] = max(yr[j], 0)
			}
		}
	}
}

func backSumsPortable(x, dy, y []float32, rows, c int, mean, invStd, sa, sb []float32) {
	for r := range rows {
		for j, v := range x[r*c : (r+1)*c] {
			g := dy[r*c+j]
			if y != nil {
				g = reluMask(y[r*c+j], g)
			}
			sa[j] += g
			sb[j] += g * ((v - mean[j]) * invStd[j])
		}
	}
}

func backApplyPortable(x, dy, y []float32, rows, c int, mean, invStd, k, ka, kb, dx []float32) {
	for r := range rows {
		dxr := dx[r*c : (r+1)*c]
		for j, v := range x[r*c : (r+1)*c] {
			g := dy[r*c+j]
			if y != nil {
				g = reluMask(y[r*c+j], g)
			}
			xh := (v - mean[j]) * invStd[j]
			dxr[j] = k[j] * (g - ka[j] - xh*kb[j])
		}
	}
}
