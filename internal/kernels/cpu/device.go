package cpu

import (
	"fmt"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/fused"
)

// Device is the CPU's kernels.Device: memory is Go memory, products run on
// the packed SGEMM and everything else on parallel loops over disjoint parts
// of the output, so results do not depend on the number of workers. Work
// runs when it is called, so a failure is known at once; it is still
// reported at the next sync, as the contract says, and the device skips
// work until then.
type Device struct {
	workers int
	ks      *kernelSet
	gemm    *gemm
	loss    *LossEngine
	meter   fused.Meter
	faults  kernels.Faults
	timer   timer

	// Scratch kept between calls, grown on first use (and counted by meter).
	dcol    [][]float32 // per-worker columns of the convolution's input gradient
	wt      []float32   // transposed filters or filter gradients
	parts   []float32   // partial products of the filter gradient
	bnPartA []float32   // batch norm: per-block partial sums
	bnPartB []float32
	bnSumA  []float64 // batch norm: per-channel totals
	bnSumB  []float64
	bnCoef  []float32 // batch norm: per-channel scale, shift and gradient coefficients
	ceLoss  []float64 // cross entropy: per-row losses
	sqParts []float64 // sum of squares: per-block sums
	labels  []int     // the contrastive loss's labels as ints
	zeros   []float32 // zeros for the convolution's padding (never written)
}

// NewDevice returns the CPU device; opt chooses the workers and kernels
// (Tile is the loss engine's).
func NewDevice(opt kernels.CPUOptions) (*Device, error) {
	loss, err := NewLossEngine(opt)
	if err != nil {
		return nil, err
	}
	d := &Device{workers: loss.workers, ks: loss.ks, loss: loss}
	d.gemm = newGemm(d.workers, d.ks, &d.meter)
	loss.setMeter(&d.meter)
	return d, nil
}

// Name returns "cpu".
func (d *Device) Name() string { return kernels.DeviceCPU }

// Describe names the kernels and the workers.
func (d *Device) Describe() string { return d.loss.Describe() }

// memory is an allocation of the CPU device: one block of Go memory seen as
// float32, int32 and float64 values.
type memory struct {
	dev   *Device
	bytes int
	f32   []float32
	i32   []int32
	f64   []float64
}

// Bytes is the size of the allocation.
func (m *memory) Bytes() int { return m.bytes }

// Alloc returns zeroed memory.
func (d *Device) Alloc(bytes int) (kernels.Memory, error) {
	if bytes < 0 {
		return nil, fmt.Errorf("cpu: allocation of %d bytes", bytes)
	}
	words := (bytes + 7) / 8
	f64 := make([]float64, words)
	m := &memory{dev: d, bytes: bytes, f64: f64}
	if words > 0 {
		m.f32 = unsafeFloat32s(f64)
		m.i32 = unsafeInt32s(f64)
	}
	d.meter.Add(int64(8 * words))
	return m, nil
}

// Free releases an allocation.
func (d *Device) Free(mem kernels.Memory) error {
	m, ok := mem.(*memory)
	if !ok || m.dev != d {
		return fmt.Errorf("cpu: free of %T, not this device's memory", mem)
	}
	if m.f64 == nil && m.bytes > 0 {
		return fmt.Errorf("cpu: memory freed twice")
	}
	d.meter.Add(-int64(8 * len(m.f64)))
	m.f32, m.i32, m.f64 = nil, nil, nil
	return nil
}

// MemStats reports the arenas and the device's own scratch together.
func (d *Device) MemStats() kernels.MemStats {
	in, peak, n := d.meter.Read()
	return kernels.MemStats{InUse: in, Peak: peak, Allocs: n}
}

// owned returns the memory behind a view when it is this device's.
func (d *Device) owned(mem kernels.Memory) (*memory, error) {
	m, ok := mem.(*memory)
	if !ok || m.dev != d {
		return nil, fmt.Errorf("a buffer of another device (%T)", mem)
	}
	if m.f64 == nil && m.bytes > 0 {
		return nil, fmt.Errorf("a buffer whose memory was freed")
	}
	return m, nil
}

// unsafeFloat32s and unsafeInt32s view 8-byte words as twice as many
// 4-byte values.
func unsafeFloat32s(w []float64) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), 2*len(w))
}

func unsafeInt32s(w []float64) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(&w[0])), 2*len(w))
}

// f32 returns the host memory of a buffer (nil for a nil buffer); check has
// vetted it.
func f32(b kernels.Buffer) []float32 {
	mem, off := b.Mem()
	if mem == nil {
		return nil
	}
	return mem.(*memory).f32[off : off+b.Len()]
}

func i32(b kernels.Ints) []int32 {
	mem, off := b.Mem()
	return mem.(*memory).i32[off : off+b.Len()]
}

func f64(b kernels.Scalars) []float64 {
	mem, off := b.Mem()
	if mem == nil {
		return nil
	}
	return mem.(*memory).f64[off : off+b.Len()]
}

// begin starts an operation: it reports whether the work should run. It
// does not when an earlier failure waits for a sync, when err (the
// operation's own validation) is not nil, or when a view is not this
// device's memory; the failure is then recorded for the next sync.
func (d *Device) begin(op string, sz fmt.Stringer, err error, views ...interface{ Mem() (kernels.Memory, int) }) bool {
	if d.faults.Failed() {
		return false
	}
	if err == nil {
		for _, v := range views {
			if mem, _ := v.Mem(); mem != nil {
				if _, err = d.owned(mem); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		d.faults.Add(op, sz.String(), err)
		return false
	}
	return true
}

// Sync returns the failure recorded since the last sync: the CPU's work is
// already done.
func (d *Device) Sync() error { return d.faults.Take() }

// Upload copies src into dst.
func (d *Device) Upload(dst kernels.Buffer, src []float32) {
	if d.begin("upload", kernels.Values(len(src)), kernels.CheckLens(kernels.Need("destination", dst, len(src))), dst) {
		copy(f32(dst), src)
	}
}

// UploadInts copies src into dst.
func (d *Device) UploadInts(dst kernels.Ints, src []int32) {
	if d.begin("upload", kernels.Values(len(src)), kernels.CheckLens(kernels.Need("destination", dst, len(src))), dst) {
		copy(i32(dst), src)
	}
}

// Download copies src into dst. It syncs.
func (d *Device) Download(dst []float32, src kernels.Buffer) error {
	if d.begin("download", kernels.Values(len(dst)), kernels.CheckLens(kernels.Need("source", src, len(dst))), src) {
		copy(dst, f32(src))
	}
	return d.Sync()
}

// ReadScalars copies src into dst. It syncs.
func (d *Device) ReadScalars(dst []float64, src kernels.Scalars) error {
	if d.begin("read scalars", kernels.Values(len(dst)), kernels.CheckLens(kernels.Need("source", src, len(dst))), src) {
		copy(dst, f64(src))
	}
	return d.Sync()
}

// Copy copies src into dst.
func (d *Device) Copy(dst, src kernels.Buffer) {
	if d.begin("copy", kernels.Values(src.Len()), kernels.CheckLens(kernels.Need("destination", dst, src.Len())), dst, src) {
		copy(f32(dst), f32(src))
	}
}

// Fill sets every value to v.
func (d *Device) Fill(dst kernels.Buffer, v float32) {
	if !d.begin("fill", kernels.Values(dst.Len()), nil, dst) {
		return
	}
	x := f32(dst)
	d.parallel(len(x), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x[i] = v
		}
	})
}

// parallel runs body over [0, n) split into contiguous ranges, one per
// worker, when there is enough work (n*cost above a threshold).
func (d *Device) parallel(n, cost int, body func(lo, hi int)) {
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

// Gemm runs the packed SGEMM.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, beta float32, c kernels.Buffer, ldc int) {
	sz := kernels.Sizes(func() string { return kernels.GemmSizes(transA, transB, m, n, k) })
	if !d.begin("gemm", sz, kernels.CheckGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc), a, b, c) {
		return
	}
	d.gemm.Sgemm(transA, transB, m, n, k, alpha, f32(a), lda, f32(b), ldb, beta, f32(c), ldc)
}

// AddBias adds bias to every row.
func (d *Device) AddBias(y kernels.Buffer, rows, cols int, bias kernels.Buffer) {
	if !d.begin("add bias", kernels.RowsCols(rows, cols), kernels.CheckLens(kernels.Need("y", y, rows*cols), kernels.Need("bias", bias, cols)), y, bias) {
		return
	}
	Y, B := f32(y), f32(bias)
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
func (d *Device) SumRows(dy kernels.Buffer, rows, cols int, db kernels.Buffer) {
	if !d.begin("sum rows", kernels.RowsCols(rows, cols), kernels.CheckLens(kernels.Need("dy", dy, rows*cols), kernels.Need("db", db, cols)), dy, db) {
		return
	}
	DY, DB := f32(dy), f32(db)
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
func (d *Device) ReLU(x, y kernels.Buffer) {
	if !d.begin("relu", kernels.Values(x.Len()), kernels.SameLens(x.Len(), []string{"y"}, y), x, y) {
		return
	}
	X, Y := f32(x), f32(y)
	d.parallel(len(X), 1, func(lo, hi int) {
		for i, v := range X[lo:hi] {
			Y[lo+i] = max(v, 0)
		}
	})
}

// ReLUBackward passes dy where y > 0, without branches (the signs are
// random).
func (d *Device) ReLUBackward(y, dy, dx kernels.Buffer) {
	if !d.begin("relu backward", kernels.Values(y.Len()), kernels.SameLens(y.Len(), []string{"dy", "dx"}, dy, dx), y, dy, dx) {
		return
	}
	Y, DY, DX := f32(y), f32(dy), f32(dx)
	d.parallel(len(Y), 1, func(lo, hi int) {
		dyr, dxr := DY[lo:hi], DX[lo:hi]
		for i, v := range Y[lo:hi] {
			dxr[i] = reluMask(v, dyr[i])
		}
	})
}

// Add sets y = a + b.
func (d *Device) Add(a, b, y kernels.Buffer) {
	if !d.begin("add", kernels.Values(a.Len()), kernels.SameLens(a.Len(), []string{"b", "y"}, b, y), a, b, y) {
		return
	}
	A, B, Y := f32(a), f32(b), f32(y)
	d.parallel(len(Y), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			Y[i] = A[i] + B[i]
		}
	})
}

// l2Floor keeps a zero row from dividing by zero (as F.normalize's eps).
const l2Floor = 1e-12

// L2Normalize divides each row by its norm.
func (d *Device) L2Normalize(rows, cols int, x, y, norms kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("x", x, rows*cols), kernels.Need("y", y, rows*cols), kernels.Need("norms", norms, rows))
	if !d.begin("l2 normalize", kernels.RowsCols(rows, cols), err, x, y, norms) {
		return
	}
	X, Y, N := f32(x), f32(y), f32(norms)
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
func (d *Device) L2NormalizeBackward(rows, cols int, y, norms, dy, dx kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("y", y, rows*cols), kernels.Need("norms", norms, rows),
		kernels.Need("dy", dy, rows*cols), kernels.Need("dx", dx, rows*cols))
	if !d.begin("l2 normalize backward", kernels.RowsCols(rows, cols), err, y, norms, dy, dx) {
		return
	}
	Y, N, DY, DX := f32(y), f32(norms), f32(dy), f32(dx)
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

// SoftmaxCrossEntropy is the mean cross entropy over the rows, summed in
// row order.
func (d *Device) SoftmaxCrossEntropy(rows, classes int, logits kernels.Buffer, labels kernels.Ints, dlogits kernels.Buffer, loss kernels.Scalars) {
	err := kernels.CheckLens(kernels.Need("logits", logits, rows*classes), kernels.Need("labels", labels, rows),
		kernels.Need("dlogits", dlogits, rows*classes), kernels.Need("loss", loss, 1))
	if err == nil && rows < 1 {
		err = fmt.Errorf("no rows")
	}
	if !d.begin("softmax cross entropy", kernels.RowsCols(rows, classes), err, logits, labels, dlogits, loss) {
		return
	}
	L, Y, DL := f32(logits), i32(labels), f32(dlogits)
	for r, y := range Y {
		if y < 0 || int(y) >= classes {
			d.faults.Add("softmax cross entropy", kernels.RowsCols(rows, classes).String(), fmt.Errorf("row %d has label %d, want 0 to %d", r, y, classes-1))
			return
		}
	}
	d.ceLoss = fused.Grow(&d.meter, d.ceLoss, rows)
	losses := d.ceLoss
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
			label := int(Y[r])
			losses[r] = lse - float64(row[label])
			for j, v := range row {
				p := math.Exp(float64(v) - lse)
				if j == label {
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
	f64(loss)[0] = total / float64(rows)
}

// ContrastiveLoss runs the fused CPU loss engine.
func (d *Device) ContrastiveLoss(p kernels.Params, z kernels.Buffer, n, dim int, labels kernels.Ints, grad kernels.Buffer, loss kernels.Scalars) {
	err := kernels.CheckLens(kernels.Need("z", z, n*dim), kernels.Need("labels", labels, n),
		kernels.Optional("grad", grad, n*dim), kernels.Need("loss", loss, 1))
	sz := kernels.Sizes(func() string { return fmt.Sprintf("%s, %d x %d", p.Loss, n, dim) })
	if !d.begin("contrastive loss", sz, err, z, labels, grad, loss) {
		return
	}
	d.labels = fused.Grow(&d.meter, d.labels, n)
	for i, y := range i32(labels) {
		d.labels[i] = int(y)
	}
	res, err := d.loss.Compute(p, f32(z), n, dim, d.labels, f32(grad))
	if err != nil {
		d.faults.Add("contrastive loss", sz.String(), err)
		return
	}
	f64(loss)[0] = res.Loss
}

// SGD is PyTorch's SGD step with momentum and weight decay, skipped when
// the guard holds a NaN or Inf.
func (d *Device) SGD(w, g, v kernels.Buffer, lr, momentum, decay float32, guard kernels.Scalars) {
	if !d.begin("sgd", kernels.Values(w.Len()), kernels.SameLens(w.Len(), []string{"g", "v"}, g, v), w, g, v, guard) {
		return
	}
	for _, x := range f64(guard) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
	}
	W, G, V := f32(w), f32(g), f32(v)
	d.parallel(len(W), 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			step := G[i] + decay*W[i]
			V[i] = momentum*V[i] + step
			W[i] -= lr * V[i]
		}
	})
}

// sumBlock is the number of values each partial sum of SumSquares covers.
const sumBlock = 1 << 14

// SumSquares sums x^2 in fixed blocks, then the blocks in order.
func (d *Device) SumSquares(x kernels.Buffer, out kernels.Scalars) {
	if !d.begin("sum of squares", kernels.Values(x.Len()), kernels.CheckLens(kernels.Need("out", out, 1)), x, out) {
		return
	}
	X := f32(x)
	d.sqParts = fused.Grow(&d.meter, d.sqParts, (len(X)+sumBlock-1)/sumBlock)
	parts := d.sqParts
	d.parallel(len(parts), sumBlock, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			var s float64
			for _, v := range X[p*sumBlock : min((p+1)*sumBlock, len(X))] {
				s += float64(v) * float64(v)
			}
			parts[p] = s
		}
	})
	var s float64
	for _, p := range parts {
		s += p
	}
	f64(out)[0] = s
}

// Timer returns the wall-clock timer: the CPU's work is done when a call
// returns.
func (d *Device) Timer() kernels.Timer {
	d.timer.dev = d
	return &d.timer
}

// timer attributes wall-clock intervals to names.
type timer struct {
	dev   *Device
	last  time.Time
	spans []kernels.Span
}

func (t *timer) Start() { t.last = time.Now() }

func (t *timer) Mark(name string) {
	now := time.Now()
	for i := range t.spans {
		if t.spans[i].Name == name {
			t.spans[i].Time += now.Sub(t.last)
			t.last = now
			return
		}
	}
	t.spans = append(t.spans, kernels.Span{Name: name, Time: now.Sub(t.last)})
	t.last = now
}

func (t *timer) Read() ([]kernels.Span, error) {
	s := t.spans
	t.spans = nil
	return s, t.dev.Sync()
}
