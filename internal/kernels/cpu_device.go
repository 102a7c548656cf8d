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
	workers  int
	portable bool
	gemm     *Gemm
	loss     *CPU
	dcol     [][]float32 // per-worker scratch of the convolution's input gradient
	wt       []float32   // transposed filters or filter gradients
	parts    []float32   // partial products of the filter gradient
}

// NewCPUDevice returns the CPU device; opt chooses the workers and kernels
// (Tile is the loss engine's).
func NewCPUDevice(opt CPUOptions) (*CPUDevice, error) {
	loss, err := NewCPU(opt)
	if err != nil {
		return nil, err
	}
	return &CPUDevice{workers: loss.Workers(), portable: opt.Portable, gemm: NewGemm(loss.Workers(), opt.Portable), loss: loss}, nil
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

// ReLU sets y = max(x, 0).
func (d *CPUDevice) ReLU(x, y Buffer) {
	X, Y := host(x), host(y)
	d.parallel(len(X), 1, func(lo, hi int) {
		for i, v := range X[lo:hi] {
			Y[lo+i] = max(v, 0)
		}
	})
}

// ReLUBackward passes dy where y > 0, without branches (the signs are
// random).
func (d *CPUDevice) ReLUBackward(y, dy, dx Buffer) {
	Y, DY, DX := host(y), host(dy), host(dx)
	d.parallel(len(Y), 1, func(lo, hi int) {
		dyr, dxr := DY[lo:hi], DX[lo:hi]
		for i, v := range Y[lo:hi] {
			dxr[i] = reluMask(v, dyr[i])
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
