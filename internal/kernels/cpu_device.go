package kernels

import (
	"fmt"
	"math"
	"sync"
)

// CPUDevice is the Device of the CPU: buffers are Go memory, products run
// on the packed SGEMM and everything else on parallel loops over disjoint
// parts of the output, so results do not depend on the number of workers.
type CPUDevice struct {
	workers int
	gemm    *Gemm
	loss    *CPU
	col     []float32 // im2col scratch
	tmp     []float32 // convolution output/gradient scratch
}

// NewCPUDevice returns the CPU device; opt chooses the workers and kernels
// (Tile is the loss engine's).
func NewCPUDevice(opt CPUOptions) (*CPUDevice, error) {
	loss, err := NewCPU(opt)
	if err != nil {
		return nil, err
	}
	return &CPUDevice{workers: loss.Workers(), gemm: NewGemm(loss.Workers(), opt.Portable), loss: loss}, nil
}

// Name returns "cpu".
func (d *CPUDevice) Name() string { return DeviceCPU }

// Kernels names the CPU kernels in use.
func (d *CPUDevice) Kernels() string { return d.loss.Kernels() }

// Workers returns the number of goroutines the device uses.
func (d *CPUDevice) Workers() int { return d.workers }

// host returns the memory of a CPU buffer.
func host(b Buffer) []float32 {
	h, ok := b.(HostBuffer)
	if !ok {
		panic(fmt.Sprintf("kernels: %T is not a CPU buffer", b))
	}
	return h
}

// parallel runs body over [0, n) split into contiguous ranges, one per
// worker, when there is enough work (n*cost above a threshold).
func (d *CPUDevice) parallel(n, cost int, body func(lo, hi int)) {
	w := d.workers
	if n*max(cost, 1) < 1<<15 {
		w = 1
	}
	w = min(w, n)
	if w <= 1 {
		if n > 0 {
			body(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := n*i/w, n*(i+1)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(lo, hi)
		}()
	}
	wg.Wait()
}

// Alloc returns a zeroed host buffer.
func (d *CPUDevice) Alloc(n int) Buffer { return make(HostBuffer, n) }

// Upload copies src into dst.
func (d *CPUDevice) Upload(dst Buffer, src []float32) { copyExact(host(dst), src) }

// Download copies src into dst.
func (d *CPUDevice) Download(dst []float32, src Buffer) { copyExact(dst, host(src)) }

// Copy copies src into dst.
func (d *CPUDevice) Copy(dst, src Buffer) { copyExact(host(dst), host(src)) }

func copyExact(dst, src []float32) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("kernels: copy of %d values into %d", len(src), len(dst)))
	}
	copy(dst, src)
}

// Fill sets every value to v.
func (d *CPUDevice) Fill(dst Buffer, v float32) {
	x := host(dst)
	for i := range x {
		x[i] = v
	}
}

// Gemm runs the packed SGEMM.
func (d *CPUDevice) Gemm(transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) {
	d.gemm.Sgemm(transA, transB, m, n, k, alpha, host(a), lda, host(b), ldb, beta, host(c), ldc)
}

// AddBias adds bias to every row.
func (d *CPUDevice) AddBias(y Buffer, rows, cols int, bias Buffer) {
	Y, B := host(y), host(bias)[:cols]
	d.parallel(rows, cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := Y[r*cols : (r+1)*cols]
			for j, b := range B {
				row[j] += b
			}
		}
	})
}

// SumRows adds column sums to db, each summed over the rows in order.
func (d *CPUDevice) SumRows(dy Buffer, rows, cols int, db Buffer) {
	DY, DB := host(dy), host(db)[:cols]
	d.parallel(cols, rows, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			var s float32
			for r := range rows {
				s += DY[r*cols+j]
			}
			DB[j] += s
		}
	})
}

// convChunk is the number of images one im2col and product cover: enough
// columns for an efficient product, little enough scratch.
func convChunk(g ConvGeom) int {
	hw := g.OutH() * g.OutW()
	kdim := g.C * g.R * g.S
	chunk := max(1, 4096/hw)
	chunk = min(chunk, max(1, (4<<20)/(kdim*hw)), g.N)
	return chunk
}

// im2col writes, for images n0..n0+nc of x, the matrix col (C*R*S rows of
// nc*OutH*OutW): row (c, r, s), column (i, oh, ow) holds the input pixel
// the filter tap (r, s) of channel c sees at output (oh, ow) of image i.
func (d *CPUDevice) im2col(g ConvGeom, x []float32, n0, nc int, col []float32) {
	ho, wo := g.OutH(), g.OutW()
	hw, plane := ho*wo, g.H*g.W
	cols := nc * hw
	d.parallel(g.C*g.R*g.S, cols, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			c, r, s := row/(g.R*g.S), row/g.S%g.R, row%g.S
			out := col[row*cols : (row+1)*cols]
			for i := range nc {
				img := x[((n0+i)*g.C+c)*plane:]
				o := out[i*hw : (i+1)*hw]
				for oh := range ho {
					ih := oh*g.Stride - g.Pad + r
					dst := o[oh*wo : (oh+1)*wo]
					if ih < 0 || ih >= g.H {
						clear(dst)
						continue
					}
					src := img[ih*g.W : (ih+1)*g.W]
					for ow := range wo {
						iw := ow*g.Stride - g.Pad + s
						if iw >= 0 && iw < g.W {
							dst[ow] = src[iw]
						} else {
							dst[ow] = 0
						}
					}
				}
			}
		}
	})
}

// col2im sets the images n0..n0+nc of dx to the sums of the columns of dcol
// that read each pixel: the adjoint of im2col.
func (d *CPUDevice) col2im(g ConvGeom, dcol []float32, n0, nc int, dx []float32) {
	ho, wo := g.OutH(), g.OutW()
	hw, plane := ho*wo, g.H*g.W
	cols := nc * hw
	d.parallel(nc*g.C, g.R*g.S*hw, func(lo, hi int) {
		for ic := lo; ic < hi; ic++ {
			i, c := ic/g.C, ic%g.C
			img := dx[((n0+i)*g.C+c)*plane : ((n0+i)*g.C+c+1)*plane]
			clear(img)
			for r := range g.R {
				for s := range g.S {
					src := dcol[((c*g.R+r)*g.S+s)*cols+i*hw:]
					for oh := range ho {
						ih := oh*g.Stride - g.Pad + r
						if ih < 0 || ih >= g.H {
							continue
						}
						row := img[ih*g.W : (ih+1)*g.W]
						for ow := range wo {
							if iw := ow*g.Stride - g.Pad + s; iw >= 0 && iw < g.W {
								row[iw] += src[oh*wo+ow]
							}
						}
					}
				}
			}
		}
	})
}

// Conv2D is im2col and one product per chunk of images.
func (d *CPUDevice) Conv2D(g ConvGeom, x, w, y Buffer) {
	X, Wt, Y := host(x), host(w), host(y)
	hw, kdim := g.OutH()*g.OutW(), g.C*g.R*g.S
	chunk := convChunk(g)
	d.col = grow(d.col, kdim*chunk*hw)
	d.tmp = grow(d.tmp, g.K*chunk*hw)
	for n0 := 0; n0 < g.N; n0 += chunk {
		nc := min(chunk, g.N-n0)
		d.im2col(g, X, n0, nc, d.col)
		if nc == 1 {
			d.gemm.Sgemm(false, false, g.K, hw, kdim, 1, Wt, kdim, d.col, hw, 0, Y[n0*g.K*hw:], hw)
			continue
		}
		d.gemm.Sgemm(false, false, g.K, nc*hw, kdim, 1, Wt, kdim, d.col, nc*hw, 0, d.tmp, nc*hw)
		// tmp is K x (image, pixel); y is (image, K, pixel).
		d.parallel(nc*g.K, hw, func(lo, hi int) {
			for ik := lo; ik < hi; ik++ {
				i, k := ik/g.K, ik%g.K
				copy(Y[((n0+i)*g.K+k)*hw:((n0+i)*g.K+k+1)*hw], d.tmp[k*nc*hw+i*hw:k*nc*hw+(i+1)*hw])
			}
		})
	}
}

// Conv2DBackward accumulates dw = sum dy col^T and sets dx = col2im(w^T dy),
// chunk by chunk in image order.
func (d *CPUDevice) Conv2DBackward(g ConvGeom, x, w, dy, dx, dw Buffer) {
	X, Wt, DY, DW := host(x), host(w), host(dy), host(dw)
	hw, kdim := g.OutH()*g.OutW(), g.C*g.R*g.S
	chunk := convChunk(g)
	d.col = grow(d.col, kdim*chunk*hw)
	d.tmp = grow(d.tmp, g.K*chunk*hw)
	for n0 := 0; n0 < g.N; n0 += chunk {
		nc := min(chunk, g.N-n0)
		cols := nc * hw
		dyT := d.tmp[:g.K*cols]
		d.parallel(nc*g.K, hw, func(lo, hi int) {
			for ik := lo; ik < hi; ik++ {
				i, k := ik/g.K, ik%g.K
				copy(dyT[k*cols+i*hw:k*cols+(i+1)*hw], DY[((n0+i)*g.K+k)*hw:((n0+i)*g.K+k+1)*hw])
			}
		})
		d.im2col(g, X, n0, nc, d.col)
		d.gemm.Sgemm(false, true, g.K, kdim, cols, 1, dyT, cols, d.col, cols, 1, DW, kdim)
		if dx != nil {
			// The column matrix is no longer needed: reuse it for dcol.
			d.gemm.Sgemm(true, false, kdim, cols, g.K, 1, Wt, kdim, dyT, cols, 0, d.col, cols)
			d.col2im(g, d.col, n0, nc, host(dx))
		}
	}
}

// channelStats returns the mean and biased variance of channel c of x (n x
// c x hw), in float64, two passes.
func channelStats(x []float32, n, nch, hw, c int) (mean, variance float64) {
	var s float64
	for i := range n {
		for _, v := range x[(i*nch+c)*hw : (i*nch+c+1)*hw] {
			s += float64(v)
		}
	}
	m := float64(n * hw)
	mean = s / m
	var q float64
	for i := range n {
		for _, v := range x[(i*nch+c)*hw : (i*nch+c+1)*hw] {
			dv := float64(v) - mean
			q += dv * dv
		}
	}
	return mean, q / m
}

// BatchNormTrain normalises by batch statistics, channel by channel.
func (d *CPUDevice) BatchNormTrain(n, c, hw int, x, gamma, beta Buffer, eps, momentum float32, runMean, runVar, mean, invStd, y Buffer) {
	X, G, B, RM, RV, M, IS, Y := host(x), host(gamma), host(beta), host(runMean), host(runVar), host(mean), host(invStd), host(y)
	count := n * hw
	d.parallel(c, count, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mu, v := channelStats(X, n, c, hw, ch)
			is := 1 / math.Sqrt(v+float64(eps))
			M[ch], IS[ch] = float32(mu), float32(is)
			unbiased := v
			if count > 1 {
				unbiased = v * float64(count) / float64(count-1)
			}
			RM[ch] = (1-momentum)*RM[ch] + momentum*float32(mu)
			RV[ch] = (1-momentum)*RV[ch] + momentum*float32(unbiased)
			scale := float32(is) * G[ch]
			shift := B[ch] - float32(mu)*scale
			for i := range n {
				off := (i*c + ch) * hw
				for j, v := range X[off : off+hw] {
					Y[off+j] = v*scale + shift
				}
			}
		}
	})
}

// BatchNormEval normalises by the running statistics.
func (d *CPUDevice) BatchNormEval(n, c, hw int, x, gamma, beta, runMean, runVar Buffer, eps float32, y Buffer) {
	X, G, B, RM, RV, Y := host(x), host(gamma), host(beta), host(runMean), host(runVar), host(y)
	d.parallel(c, n*hw, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			scale := G[ch] / float32(math.Sqrt(float64(RV[ch])+float64(eps)))
			shift := B[ch] - RM[ch]*scale
			for i := range n {
				off := (i*c + ch) * hw
				for j, v := range X[off : off+hw] {
					Y[off+j] = v*scale + shift
				}
			}
		}
	})
}

// BatchNormBackward is the gradient of BatchNormTrain's normalisation.
func (d *CPUDevice) BatchNormBackward(n, c, hw int, x, gamma, mean, invStd, dy, dx, dgamma, dbeta Buffer) {
	X, G, M, IS, DY, DX, DG, DB := host(x), host(gamma), host(mean), host(invStd), host(dy), host(dx), host(dgamma), host(dbeta)
	count := float64(n * hw)
	d.parallel(c, n*hw, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mu, is := float64(M[ch]), float64(IS[ch])
			var sdy, sdyx float64
			for i := range n {
				off := (i*c + ch) * hw
				for j, g := range DY[off : off+hw] {
					sdy += float64(g)
					sdyx += float64(g) * (float64(X[off+j]) - mu) * is
				}
			}
			DB[ch] += float32(sdy)
			DG[ch] += float32(sdyx)
			k := float64(G[ch]) * is
			a, b := sdy/count, sdyx/count
			for i := range n {
				off := (i*c + ch) * hw
				for j, g := range DY[off : off+hw] {
					xh := (float64(X[off+j]) - mu) * is
					DX[off+j] = float32(k * (float64(g) - a - xh*b))
				}
			}
		}
	})
}

// ReLU sets y = max(x, 0).
func (d *CPUDevice) ReLU(x, y Buffer) {
	X, Y := host(x), host(y)
	d.parallel(len(X), 1, func(lo, hi int) {
		for i, v := range X[lo:hi] {
			Y[lo+i] = max(v, 0)
		}
	})
}

// ReLUBackward passes dy where y > 0.
func (d *CPUDevice) ReLUBackward(y, dy, dx Buffer) {
	Y, DY, DX := host(y), host(dy), host(dx)
	d.parallel(len(Y), 1, func(lo, hi int) {
		for i, v := range Y[lo:hi] {
			if v > 0 {
				DX[lo+i] = DY[lo+i]
			} else {
				DX[lo+i] = 0
			}
		}
	})
}

// Add sets y = a + b.
func (d *CPUDevice) Add(a, b, y Buffer) {
	A, B, Y := host(a), host(b), host(y)
	d.parallel(len(Y), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			Y[i] = A[i] + B[i]
		}
	})
}

// GlobalAvgPool averages each channel plane.
func (d *CPUDevice) GlobalAvgPool(n, c, hw int, x, y Buffer) {
	X, Y := host(x), host(y)
	d.parallel(n*c, hw, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			var s float32
			for _, v := range X[p*hw : (p+1)*hw] {
				s += v
			}
			Y[p] = s / float32(hw)
		}
	})
}

// GlobalAvgPoolBackward spreads each gradient over its plane.
func (d *CPUDevice) GlobalAvgPoolBackward(n, c, hw int, dy, dx Buffer) {
	DY, DX := host(dy), host(dx)
	d.parallel(n*c, hw, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			g := DY[p] / float32(hw)
			plane := DX[p*hw : (p+1)*hw]
			for j := range plane {
				plane[j] = g
			}
		}
	})
}

// l2Floor keeps a zero row from dividing by zero (as F.normalize's eps).
const l2Floor = 1e-12

// L2Normalize divides each row by its norm.
func (d *CPUDevice) L2Normalize(rows, cols int, x, y, norms Buffer) {
	X, Y, N := host(x), host(y), host(norms)
	d.parallel(rows, cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := X[r*cols : (r+1)*cols]
			var s float64
			for _, v := range row {
				s += float64(v) * float64(v)
			}
			norm := max(math.Sqrt(s), l2Floor)
			N[r] = float32(norm)
			inv := 1 / norm
			for j, v := range row {
				Y[r*cols+j] = float32(float64(v) * inv)
			}
		}
	})
}

// L2NormalizeBackward projects dy onto the tangent space and scales it.
func (d *CPUDevice) L2NormalizeBackward(rows, cols int, y, norms, dy, dx Buffer) {
	Y, N, DY, DX := host(y), host(norms), host(dy), host(dx)
	d.parallel(rows, cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr, gr := Y[r*cols:(r+1)*cols], DY[r*cols:(r+1)*cols]
			var dot float64
			for j, v := range yr {
				dot += float64(v) * float64(gr[j])
			}
			inv := 1 / float64(N[r])
			for j, v := range yr {
				DX[r*cols+j] = float32((float64(gr[j]) - float64(v)*dot) * inv)
			}
		}
	})
}

// SoftmaxCrossEntropy is the mean cross entropy over the rows.
func (d *CPUDevice) SoftmaxCrossEntropy(rows, classes int, logits Buffer, labels []int, dlogits Buffer) float64 {
	L, DL := host(logits), host(dlogits)
	losses := make([]float64, rows)
	d.parallel(rows, classes, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := L[r*classes : (r+1)*classes]
			m := math.Inf(-1)
			for _, v := range row {
				m = max(m, float64(v))
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			lse := m + math.Log(s)
			losses[r] = lse - float64(row[labels[r]])
			for j, v := range row {
				p := math.Exp(float64(v) - lse)
				if j == labels[r] {
					p--
				}
				DL[r*classes+j] = float32(p / float64(rows))
			}
		}
	})
	var total float64
	for _, l := range losses {
		total += l
	}
	return total / float64(rows)
}

// ContrastiveLoss runs the fused CPU loss engine.
func (d *CPUDevice) ContrastiveLoss(p Params, z Buffer, n, dim int, labels []int, grad Buffer) (Result, error) {
	var g []float32
	if grad != nil {
		g = host(grad)
	}
	return d.loss.Compute(p, host(z), n, dim, labels, g)
}

// SGD is PyTorch's SGD step with momentum and weight decay.
func (d *CPUDevice) SGD(w, g, v Buffer, lr, momentum, decay float32) {
	W, G, V := host(w), host(g), host(v)
	d.parallel(len(W), 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			step := G[i] + decay*W[i]
			V[i] = momentum*V[i] + step
			W[i] -= lr * V[i]
		}
	})
}

// SumSquares sums x^2 in fixed blocks, in order.
func (d *CPUDevice) SumSquares(x Buffer) float64 {
	X := host(x)
	const block = 1 << 14
	parts := make([]float64, (len(X)+block-1)/block)
	d.parallel(len(parts), block, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			var s float64
			for _, v := range X[p*block : min((p+1)*block, len(X))] {
				s += float64(v) * float64(v)
			}
			parts[p] = s
		}
	})
	var s float64
	for _, p := range parts {
		s += p
	}
	return s
}
