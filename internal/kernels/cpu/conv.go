package cpu

import (
	"sync"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/fused"
)

// The CPU convolution works on channels-last tensors (NHWC) and filters laid
// out R x S x C x K (HWIO). Its three products read their operands straight
// from those tensors while packing GEMM panels, so no patch ("im2col")
// matrix is ever written:
//
//   forward  Y (pixels x K)   = patches(X) (pixels x RSC) . W (RSC x K)
//   filter   dW^T (K x RSC)   = dY^T (K x pixels) . patches(X)
//   input    dX = scatter of dY . W^T, a chunk of images at a time.
//
// The forward and filter products split their output among the workers, and
// the input gradient gives each worker whole images, so every value is
// summed in one fixed order whatever the number of workers.

// patches describes the patch matrix of a convolution: row P is output
// pixel P (image, oh, ow), column t is filter tap t = (r, s, c).
type patches struct {
	g          kernels.ConvGeom
	x          []float32
	ho, wo     int
	interleave func(dst []float32, src *[gemmMR][]float32, n int) // nil: Go only
	addTo      func(dst, src []float32)                           // nil: Go only
	zeros      []float32                                          // at least C zeros, read only
}

// newPatches describes the patch matrix of a convolution of x.
func (d *Device) newPatches(g kernels.ConvGeom, x []float32) patches {
	if len(d.zeros) < g.C {
		d.zeros = fused.Grow(&d.meter, d.zeros, g.C)
	}
	return patches{g: g, x: x, ho: g.OutH(), wo: g.OutW(), interleave: d.ks.interleave, addTo: d.ks.addTo, zeros: d.zeros}
}

// rows is the number of output pixels, N OutH OutW.
func (pt patches) rows() int { return pt.g.N * pt.ho * pt.wo }

// origin returns where output pixel P's window starts in x: the image's
// offset and the window's top-left input row and column.
func (pt patches) origin(P int) (base, ih, iw int) {
	g := pt.g
	hw := pt.ho * pt.wo
	n, pix := P/hw, P%hw
	return n * g.H * g.W * g.C, (pix/pt.wo)*g.Stride - g.Pad, (pix%pt.wo)*g.Stride - g.Pad
}

// packRows packs rows (pixels) ic..ic+mb, columns (taps) pc..pc+kb as
// 6-row panels: the forward product's A. For each run of channels of one
// filter tap it gathers the six pixels' source rows (zeros outside the
// image) and interleaves them, writing the panel in order.
func (pt patches) packRows(dst []float32, ic, pc, mb, kb int) {
	g := pt.g
	m := pt.rows()
	zeros := pt.zeros
	r0, s0, c0 := pc/(g.S*g.C), pc/g.C%g.S, pc%g.C
	var base, oh, ow [gemmMR]int
	var valid [gemmMR]bool
	var src [gemmMR][]float32
	for pi := range (mb + gemmMR - 1) / gemmMR {
		out := dst[pi*gemmMR*kb : (pi+1)*gemmMR*kb]
		for i := range gemmMR {
			P := ic + pi*gemmMR + i
			valid[i] = pi*gemmMR+i < mb && P < m
			if valid[i] {
				base[i], oh[i], ow[i] = pt.origin(P)
			}
		}
		if g.C == 1 {
			pt.packSingle(out, &valid, &base, &oh, &ow, pc, kb)
			continue
		}
		r, s, c := r0, s0, c0
		for p := 0; p < kb; {
			run := min(g.C-c, kb-p)
			for i := range gemmMR {
				src[i] = zeros[:run]
				if ih, iw := oh[i]+r, ow[i]+s; valid[i] && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
					at := base[i] + (ih*g.W+iw)*g.C + c
					src[i] = pt.x[at : at+run]
				}
			}
			o := dst[pi*gemmMR*kb+p*gemmMR:] // the interleave may write 2 values past the run
			done := 0
			if pt.interleave != nil && run >= 8 && len(o) >= run*gemmMR+2 {
				done = run &^ 7
				pt.interleave(o, &src, done)
			}
			s0, s1, s2, s3, s4, s5 := src[0], src[1], src[2], src[3], src[4], src[5]
			for q := done; q < run; q++ {
				w := o[q*gemmMR : q*gemmMR+gemmMR]
				w[0], w[1], w[2], w[3], w[4], w[5] = s0[q], s1[q], s2[q], s3[q], s4[q], s5[q]
			}
			p += run
			if c += run; c == g.C {
				c = 0
				if s++; s == g.S {
					s, r = 0, r+1
				}
			}
		}
	}
}

// packSingle is packRows for one input channel: each tap is one value per
// pixel.
func (pt patches) packSingle(out []float32, valid *[gemmMR]bool, base, oh, ow *[gemmMR]int, pc, kb int) {
	g := pt.g
	for p := range kb {
		t := pc + p
		r, s := t/g.S, t%g.S
		w := out[p*gemmMR : (p+1)*gemmMR]
		for i := range gemmMR {
			w[i] = 0
			if ih, iw := oh[i]+r, ow[i]+s; valid[i] && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
				w[i] = pt.x[base[i]+ih*g.W+iw]
			}
		}
	}
}

// packTaps packs rows (pixels) pc..pc+kb, columns (taps) jc..jc+nb as
// 16-column panels: the B of the filter gradient dW^T = dY^T . patches. Each
// window's runs of channels are copied whole.
func (pt patches) packTaps(dst []float32, pc, jc, kb, nb int) {
	g := pt.g
	panels := (nb + gemmNR - 1) / gemmNR
	clear(dst[:panels*gemmNR*kb])
	end := jc + nb
	r0, s0, c0 := jc/(g.S*g.C), jc/g.C%g.S, jc%g.C
	for p := range kb {
		base, oh, ow := pt.origin(pc + p)
		r, s, c := r0, s0, c0
		for t := jc; t < end; {
			// A run ends at the channel count or at a panel's edge.
			k := t - jc
			run := min(g.C-c, end-t, gemmNR-k%gemmNR)
			if ih, iw := oh+r, ow+s; ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
				at := (k/gemmNR)*gemmNR*kb + p*gemmNR + k%gemmNR
				copy(dst[at:at+run], pt.x[base+(ih*g.W+iw)*g.C+c:])
			}
			t += run
			if c += run; c == g.C {
				c = 0
				if s++; s == g.S {
					s, r = 0, r+1
				}
			}
		}
	}
}

// packCols packs the transpose: rows (taps) ic..ic+mb, columns (pixels)
// pc..pc+kb as 6-row panels: the A of the filter gradient dW = patches^T . dY,
// the orientation used when there are fewer taps than filters.
func (pt patches) packCols(dst []float32, ic, pc, mb, kb int) {
	g := pt.g
	panels := (mb + gemmMR - 1) / gemmMR
	clear(dst[:panels*gemmMR*kb])
	end := ic + mb
	if g.C == 1 { // one value per tap: no runs to copy
		for p := range kb {
			base, oh, ow := pt.origin(pc + p)
			for t := ic; t < end; t++ {
				if ih, iw := oh+t/g.S, ow+t%g.S; ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
					k := t - ic
					dst[(k/gemmMR)*gemmMR*kb+p*gemmMR+k%gemmMR] = pt.x[base+ih*g.W+iw]
				}
			}
		}
		return
	}
	r0, s0, c0 := ic/(g.S*g.C), ic/g.C%g.S, ic%g.C
	for p := range kb {
		base, oh, ow := pt.origin(pc + p)
		r, s, c := r0, s0, c0
		for t := ic; t < end; {
			run := min(g.C-c, end-t)
			if ih, iw := oh+r, ow+s; ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
				src := pt.x[base+(ih*g.W+iw)*g.C+c : base+(ih*g.W+iw)*g.C+c+run]
				for q, v := range src {
					k := t + q - ic
					dst[(k/gemmMR)*gemmMR*kb+p*gemmMR+k%gemmMR] = v
				}
			}
			t += run
			if c += run; c == g.C {
				c = 0
				if s++; s == g.S {
					s, r = 0, r+1
				}
			}
		}
	}
}

// Conv2D computes y (N x OutH x OutW x K) from x (N x H x W x C) and w
// (R x S x C x K).
func (d *Device) Conv2D(g kernels.ConvGeom, x, w, y kernels.Buffer) {
	if !d.begin("conv2d", g, g.Check(x, w, y), x, w, y) {
		return
	}
	pt := d.newPatches(g, f32(x))
	job := &gemmJob{m: pt.rows(), n: g.K, k: g.R * g.S * g.C, alpha: 1,
		packA: pt.packRows, packB: matrixPackB(false, f32(w), g.K), c: f32(y), ldc: g.K}
	d.gemm.parallel(job, true, gemmMR)
}

// Conv2DBackward adds dL/dw to a.DW and, when a.DX is not nil, sets a.DX.
func (d *Device) Conv2DBackward(a kernels.ConvBackward) {
	g := a.Geom
	if !d.begin("conv2d backward", g, a.Check(), a.X, a.W, a.DY, a.DX, a.DW) {
		return
	}
	pt := d.newPatches(g, f32(a.X))
	taps := g.R * g.S * g.C
	DY, W, DW := f32(a.DY), f32(a.W), f32(a.DW)
	// The filter gradient sums over every output pixel: a long k and a
	// small C. With enough pixels it is split over k in fixed chunks (each
	// worker packs only its own pixels); with few (deep layers) over C's
	// columns. The choice depends on the shape alone, so the bits do not
	// depend on the number of workers.
	run := func(job *gemmJob) {
		if job.k >= 4*gemmChunkK {
			d.parts = d.gemm.parallelK(job, d.parts)
		} else {
			d.gemm.parallel(job, false, gemmMR)
		}
	}
	if taps < g.K {
		// dW (taps x K) += patches^T . dY
		run(&gemmJob{m: taps, n: g.K, k: pt.rows(), alpha: 1, accumulate: true,
			packA: pt.packCols, packB: matrixPackB(false, DY, g.K), c: DW, ldc: g.K})
	} else {
		// dW^T (K x taps) = dY^T . patches, added transposed.
		d.wt = fused.Grow(&d.meter, d.wt, g.K*taps)
		run(&gemmJob{m: g.K, n: taps, k: pt.rows(), alpha: 1,
			packA: matrixPackA(true, DY, g.K), packB: pt.packTaps, c: d.wt, ldc: taps})
		for t := range taps {
			row := DW[t*g.K : (t+1)*g.K]
			for k := range row {
				row[k] += d.wt[k*taps+t]
			}
		}
	}
	if a.DX.IsNil() {
		return
	}
	// dcol (pixels x taps) = dY (pixels x K) . W^T for a chunk of images
	// at a time, then each image's columns are scattered back. W^T is
	// transposed once here so that packing it is a plain copy.
	DX := f32(a.DX)
	hw := pt.ho * pt.wo
	d.wt = fused.Grow(&d.meter, d.wt, g.K*taps)
	for t := range taps {
		for k := range g.K {
			d.wt[k*taps+t] = W[t*g.K+k]
		}
	}
	chunk := max(1, min(g.N, (1<<19)/(hw*taps)))
	chunks := (g.N + chunk - 1) / chunk
	workers := min(d.workers, chunks)
	for len(d.dcol) < workers {
		d.dcol = append(d.dcol, nil)
	}
	var wg sync.WaitGroup
	for wk := range workers {
		d.dcol[wk] = fused.Grow(&d.meter, d.dcol[wk], chunk*hw*taps)
		dcol := d.dcol[wk]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := chunks * wk / workers; ch < chunks*(wk+1)/workers; ch++ {
				n0, n1 := ch*chunk, min((ch+1)*chunk, g.N)
				rows := (n1 - n0) * hw
				job := &gemmJob{m: rows, n: taps, k: g.K, alpha: 1,
					packA: matrixPackA(false, DY[n0*hw*g.K:], g.K), packB: matrixPackB(false, d.wt, taps), c: dcol, ldc: taps}
				d.gemm.run(wk, job, 0, rows, 0, taps)
				for n := n0; n < n1; n++ {
					pt.scatter(dcol[(n-n0)*hw*taps:], n, DX)
				}
			}
		}()
	}
	wg.Wait()
}

// scatter sets image n of dx to the sum, over the windows that cover each
// input pixel, of the columns of dcol (the adjoint of the patch matrix).
func (pt patches) scatter(dcol []float32, n int, dx []float32) {
	g := pt.g
	img := dx[n*g.H*g.W*g.C : (n+1)*g.H*g.W*g.C]
	clear(img)
	taps := g.R * g.S * g.C
	for pix := range pt.ho * pt.wo {
		oh, ow := (pix/pt.wo)*g.Stride-g.Pad, (pix%pt.wo)*g.Stride-g.Pad
		row := dcol[pix*taps : (pix+1)*taps]
		for r := range g.R {
			ih := oh + r
			if ih < 0 || ih >= g.H {
				continue
			}
			for s := range g.S {
				iw := ow + s
				if iw < 0 || iw >= g.W {
					continue
				}
				dst := img[(ih*g.W+iw)*g.C : (ih*g.W+iw+1)*g.C]
				src := row[(r*g.S+s)*g.C : (r*g.S+s+1)*g.C]
				if pt.addTo != nil && g.C >= 8 {
					pt.addTo(dst, src)
					continue
				}
				for c, v := range src {
					dst[c] += v
				}
			}
		}
	}
}
