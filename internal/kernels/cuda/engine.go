//go:build gpu || gpuemu

package cuda

import (
	"errors"
	"fmt"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/fused"
	"math"
	"unsafe"
)

// devPtr is a device address.
type devPtr uintptr

// gpuDriver is the part of the LossEngine driver API the LossEngine engine uses. There
// are two: gorgonia.org/cu on a GPU (build tag gpu, driver_cu.go) and the
// CPU emulator of the kernels (build tag gpuemu, driver_emu.go) for tests.
// Every method reports the driver's errors; Launch also waits for the
// kernel and reports errors raised while it ran.
type gpuDriver interface {
	// Info describes the device.
	Info() kernels.GPUInfo
	// Alloc returns bytes of device memory (contents undefined).
	Alloc(bytes int) (devPtr, error)
	// Free releases memory from Alloc.
	Free(p devPtr, bytes int) error
	// Upload copies bytes from host memory to the device.
	Upload(dst devPtr, src unsafe.Pointer, bytes int) error
	// Download copies bytes from the device to host memory.
	Download(dst unsafe.Pointer, src devPtr, bytes int) error
	// Launch runs a kernel of the module on grid x block threads, waits
	// for it, and returns its time in milliseconds. args holds each
	// parameter in 8 bytes.
	Launch(kernel string, grid, block [3]int, args []uint64) (float64, error)
	// Close releases the context and everything in it.
	Close() error
}

// Tile geometry of loss.cu.
const (
	cudaRows    = 64  // BM = BN: rows a block owns, rows of a column block
	cudaChunk   = 32  // KC: dp is a multiple of it
	cudaThreads = 256 // NT
)

// LossEngine is the fused loss engine on an NVIDIA GPU. Like CPU it keeps its
// buffers (host and device) between calls; it must not be used by two
// goroutines at once. Close releases the device.
type LossEngine struct {
	drv  gpuDriver
	prec string // resolved precision: fp32, tf32 or tf32x3
	rows fused.RowStats
	prof kernels.CUDAProfile

	// host staging
	order32, lo32, hi32 []int32
	u2, p0, p1, p2      []float32
	// One-value buffers of their own: cgo refuses pointers into memory that
	// holds Go pointers, as this struct does.
	flag64 []uint64 // the gather kernel's first bad input
	flag32 []int32  // the backward kernel's bad-output flag
	bufs   map[string]*devBuf
}

// ioBuffer reports whether a device buffer holds a call's inputs (Z, the
// sorted order, the sorted labels) or its output (the gradient): what
// CUDAProfile.ScratchBytes leaves out.
func ioBuffer(name string) bool {
	switch name {
	case "z", "order", "labels", "grad":
		return true
	}
	return false
}

// devBuf is a device allocation that grows as needed.
type devBuf struct {
	p     devPtr
	bytes int
}

// newCUDA returns an engine over a driver, with the precision resolved
// for its device.
func newLossEngine(drv gpuDriver, opt kernels.CUDAOptions) (*LossEngine, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	info := drv.Info()
	tc := info.Major >= 8
	prec := opt.Precision
	switch prec {
	case "", kernels.PrecisionAuto:
		prec = kernels.PrecisionFP32
		if tc {
			prec = kernels.PrecisionTF32x3
		}
	case kernels.PrecisionTF32, kernels.PrecisionTF32x3:
		if !tc {
			return nil, fmt.Errorf("precision %s needs TF32 tensor cores (compute capability 8.0 or newer); %s has %d.%d: use --precision fp32",
				prec, info.Name, info.Major, info.Minor)
		}
	}
	return &LossEngine{drv: drv, prec: prec, bufs: map[string]*devBuf{}, flag64: make([]uint64, 1), flag32: make([]int32, 1)}, nil
}

// Device returns "cuda".
func (c *LossEngine) Device() string { return kernels.DeviceCUDA }

// Describe names the GPU and the precision of the tiles.
func (c *LossEngine) Describe() string {
	info := c.drv.Info()
	return fmt.Sprintf("%s (compute %d.%d, %d SMs), %s tiles", info.Name, info.Major, info.Minor, info.SMs, c.prec)
}

// Info describes the GPU.
func (c *LossEngine) Info() kernels.GPUInfo { return c.drv.Info() }

// Precision is the precision of the similarity tiles: fp32, tf32 or tf32x3.
func (c *LossEngine) Precision() string { return c.prec }

// Profile describes the last Compute.
func (c *LossEngine) Profile() kernels.CUDAProfile { return c.prof }

// Close releases the device memory and the context.
func (c *LossEngine) Close() error {
	var first error
	for name, b := range c.bufs {
		if b.p != 0 {
			if err := c.drv.Free(b.p, b.bytes); err != nil && first == nil {
				first = fmt.Errorf("free %s: %w", name, err)
			}
		}
		delete(c.bufs, name)
	}
	if err := c.drv.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// buf returns the device buffer name, grown to at least bytes.
func (c *LossEngine) buf(name string, bytes int) (devPtr, error) {
	b := c.bufs[name]
	if b == nil {
		b = &devBuf{}
		c.bufs[name] = b
	}
	if b.bytes >= bytes {
		return b.p, nil
	}
	if b.p != 0 {
		if err := c.drv.Free(b.p, b.bytes); err != nil {
			return 0, fmt.Errorf("free %s: %w", name, err)
		}
		b.p, b.bytes = 0, 0
	}
	p, err := c.drv.Alloc(bytes)
	if err != nil {
		return 0, fmt.Errorf("allocate %s (%d bytes): %w", name, bytes, err)
	}
	b.p, b.bytes = p, bytes
	return p, nil
}

// upload copies a host slice into the device buffer name.
func upload[T any](c *LossEngine, name string, src []T) (devPtr, error) {
	bytes := len(src) * int(unsafe.Sizeof(*new(T)))
	p, err := c.buf(name, max(bytes, 1))
	if err != nil || bytes == 0 {
		return p, err
	}
	if err := c.drv.Upload(p, unsafe.Pointer(&src[0]), bytes); err != nil {
		return 0, fmt.Errorf("upload %s: %w", name, err)
	}
	return p, nil
}

// download copies the start of the device buffer name into dst.
func download[T any](c *LossEngine, dst []T, name string) error {
	if len(dst) == 0 {
		return nil
	}
	bytes := len(dst) * int(unsafe.Sizeof(dst[0]))
	b := c.bufs[name]
	if b == nil || b.bytes < bytes {
		return fmt.Errorf("download %s: no such buffer of %d bytes", name, bytes)
	}
	if err := c.drv.Download(unsafe.Pointer(&dst[0]), b.p, bytes); err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	return nil
}

// kargs builds a kernel's argument slots.
type kargs []uint64

func (a kargs) ptr(p devPtr) kargs { return append(a, uint64(p)) }
func (a kargs) i32(v int) kargs    { return append(a, uint64(uint32(int32(v)))) }
func (a kargs) f32(v float32) kargs {
	return append(a, uint64(math.Float32bits(v)))
}

// launch runs a kernel and records its time.
func (c *LossEngine) launch(name string, grid [3]int, args kargs) error {
	ms, err := c.drv.Launch(name, grid, [3]int{cudaThreads, 1, 1}, args)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", name, err)
	}
	c.prof.Kernels = append(c.prof.Kernels, kernels.KernelTime{Name: name, MS: ms})
	return nil
}

// backwardWidth returns the dZ columns a backward block owns: the smallest
// of 32, 64, 128, 256 that holds dp, else 256 (more blocks along y).
func backwardWidth(dp int) int {
	for _, w := range []int{32, 64, 128} {
		if dp <= w {
			return w
		}
	}
	return 256
}

// Compute evaluates the loss of embeddings z (n rows of d float32, row-major)
// with the given labels on the GPU, and when grad is not nil (n x d) writes
// dL/dZ into it. Rows are used as given: callers L2-normalise them.
func (c *LossEngine) Compute(p kernels.Params, z []float32, n, d int, labels []int, grad []float32) (kernels.Result, error) {
	if err := p.Validate(); err != nil {
		return kernels.Result{}, err
	}
	// Shapes here; NaN and Inf are found by the gather kernel, so that the
	// host does not scan N x D values.
	if err := kernels.CheckShapes(len(z), n, d, labels); err != nil {
		return kernels.Result{}, err
	}
	if grad != nil && len(grad) != n*d {
		return kernels.Result{}, fmt.Errorf("gradient buffer holds %d values, want %d", len(grad), n*d)
	}
	if n > math.MaxInt32/2 {
		return kernels.Result{}, fmt.Errorf("batch of %d rows is too large for the LossEngine kernels", n)
	}
	c.prof = kernels.CUDAProfile{}
	st := &c.rows
	np := (n + cudaRows - 1) / cudaRows * cudaRows
	dp := (d + cudaChunk - 1) / cudaChunk * cudaChunk
	nb := np / cudaRows
	anchors, res, done, err := st.Begin(p, labels, np, grad)
	if done {
		return res, err
	}
	eps := p.Margin()
	st.Resize(np)

	// Inputs: Z as given, the sorted order, the sorted labels (padding -1).
	c.order32 = fused.Grow(nil, c.order32, n)
	for k, i := range st.Order {
		c.order32[k] = int32(i)
	}
	zd, err := upload(c, "z", z)
	if err != nil {
		return kernels.Result{}, err
	}
	orderd, err := upload(c, "order", c.order32)
	if err != nil {
		return kernels.Result{}, err
	}
	labd, err := upload(c, "labels", st.Label[:np])
	if err != nil {
		return kernels.Result{}, err
	}
	zs, err := c.buf("zs", np*dp*4)
	if err != nil {
		return kernels.Result{}, err
	}
	c.flag64[0] = math.MaxUint64
	badd, err := upload(c, "badInput", c.flag64)
	if err != nil {
		return kernels.Result{}, err
	}
	blocks := min((np*dp+cudaThreads-1)/cudaThreads, 4096)
	if err := c.launch("gather_rows", [3]int{blocks, 1, 1},
		kargs{}.ptr(zd).ptr(orderd).i32(n).i32(d).i32(np).i32(dp).ptr(zs).ptr(badd)); err != nil {
		return kernels.Result{}, err
	}
	if err := download(c, c.flag64, "badInput"); err != nil {
		return kernels.Result{}, err
	}
	if i := c.flag64[0]; i != math.MaxUint64 {
		if i >= uint64(len(z)) {
			return kernels.Result{}, fmt.Errorf("gather kernel flagged element %d of %d", i, len(z))
		}
		return kernels.Result{}, kernels.CheckFinite(float64(z[i]), int(i), d)
	}

	// Sweep 1: online log-sum-exp of every row, in base-2 units.
	scale2 := float32(math.Log2E / p.Temperature)
	var stat [5]devPtr
	for k, spec := range []struct {
		name  string
		bytes int
	}{{"negMax", 4}, {"negSum", 8}, {"posMax", 4}, {"posSum", 8}, {"posSim", 8}} {
		if stat[k], err = c.buf(spec.name, np*spec.bytes); err != nil {
			return kernels.Result{}, err
		}
	}
	if err := c.launch("forward_"+c.prec, [3]int{nb, 1, 1},
		kargs{}.ptr(zs).ptr(labd).i32(n).i32(dp).f32(scale2).
			ptr(stat[0]).ptr(stat[1]).ptr(stat[2]).ptr(stat[3]).ptr(stat[4])); err != nil {
		return kernels.Result{}, err
	}
	// The row statistics land in the CPU engine's arrays, in base-2 units
	// (maxima of t, sums of 2^(t - max), sums of t over the positives).
	if err := errors.Join(
		download(c, st.NegMax[:n], "negMax"), download(c, st.NegSum[:n], "negSum"),
		download(c, st.PosMax[:n], "posMax"), download(c, st.PosSum[:n], "posSum"),
		download(c, st.SumPos[:n], "posSim"),
	); err != nil {
		return kernels.Result{}, err
	}
	for r := range n {
		st.LseNeg[r] = lse2(st.NegMax[r], st.NegSum[r])
		st.LsePos[r] = lse2(st.PosMax[r], st.PosSum[r])
		if math.IsNaN(st.LseNeg[r]) || math.IsNaN(st.LsePos[r]) || math.IsNaN(st.SumPos[r]) {
			return kernels.Result{}, fmt.Errorf("forward kernel returned NaN statistics for row %d", st.Order[r])
		}
	}

	var total float64
	if p.Loss == kernels.SupCon {
		for r := range n {
			if st.Positives[r] > 0 {
				total += kernels.LogAddExp(st.LseNeg[r], st.LsePos[r]) - st.SumPos[r]*math.Ln2/float64(st.Positives[r])
			}
		}
	} else {
		// Sweep 2: l_ip = softplus(u_i - s_ip) - eps with u_i = M_i + eps,
		// in base 2 (the backward sweep uses the same u2).
		c.u2 = fused.Grow(nil, c.u2, np)
		for r := range np {
			c.u2[r] = 0
			if r < n {
				c.u2[r] = float32((st.LseNeg[r] + eps) * math.Log2E)
			}
		}
		c.lo32, c.hi32 = fused.Grow(nil, c.lo32, nb), fused.Grow(nil, c.hi32, nb)
		for b := range nb {
			first, last := b*cudaRows, min(n, (b+1)*cudaRows)-1
			lo := st.ClassStart[st.Label[first]]
			hi := st.ClassStart[st.Label[last]+1]
			c.lo32[b] = int32(lo / cudaRows * cudaRows)
			c.hi32[b] = int32((hi + cudaRows - 1) / cudaRows * cudaRows)
		}
		u2d, err := upload(c, "u2", c.u2)
		if err != nil {
			return kernels.Result{}, err
		}
		lod, err := upload(c, "blockLo", c.lo32)
		if err != nil {
			return kernels.Result{}, err
		}
		hid, err := upload(c, "blockHi", c.hi32)
		if err != nil {
			return kernels.Result{}, err
		}
		spd, err := c.buf("spSum", np*8)
		if err != nil {
			return kernels.Result{}, err
		}
		sgd, err := c.buf("sgSum", np*8)
		if err != nil {
			return kernels.Result{}, err
		}
		if err := c.launch("positives_"+c.prec, [3]int{nb, 1, 1},
			kargs{}.ptr(zs).ptr(labd).i32(n).i32(dp).f32(scale2).ptr(u2d).ptr(lod).ptr(hid).ptr(spd).ptr(sgd)); err != nil {
			return kernels.Result{}, err
		}
		if err := errors.Join(download(c, st.SpSum[:n], "spSum"), download(c, st.QSum[:n], "sgSum")); err != nil {
			return kernels.Result{}, err
		}
		for r := range n {
			if math.IsNaN(st.SpSum[r]) || math.IsNaN(st.QSum[r]) {
				return kernels.Result{}, fmt.Errorf("positives kernel returned NaN for row %d", st.Order[r])
			}
			if st.Positives[r] > 0 {
				total += st.SpSum[r]/float64(st.Positives[r]) - eps
			}
		}
	}
	scale := p.Scale()
	res = kernels.Result{Loss: total / float64(anchors) * scale, Anchors: anchors}

	if grad != nil {
		if err := c.backward(p.Loss == kernels.SupCon, n, d, np, dp, anchors, scale, scale2, float32(1/p.Temperature), zs, labd, orderd, grad); err != nil {
			return kernels.Result{}, err
		}
	}
	c.prof.ScratchBytes = 0
	for name, b := range c.bufs {
		if !ioBuffer(name) {
			c.prof.ScratchBytes += int64(b.bytes)
		}
	}
	return res, nil
}

// backward runs sweep 3 and downloads dL/dZ into grad.
func (c *LossEngine) backward(supcon bool, n, d, np, dp, anchors int, scale float64, scale2, invTau float32,
	zs, labd, orderd devPtr, grad []float32) error {
	st := &c.rows
	st.GradientParams(supcon, n, anchors, scale)
	c.p0, c.p1, c.p2 = fused.Grow(nil, c.p0, np), fused.Grow(nil, c.p1, np), fused.Grow(nil, c.p2, np)
	for r := range np {
		// Exponents to base 2: a exp(s + b) = a 2^(t + b log2 e).
		e2 := float32(float64(st.Expo[r]) * math.Log2E)
		if supcon {
			c.p0[r], c.p1[r], c.p2[r] = st.Softmax[r], e2, st.Coef[r]
		} else {
			c.p0[r], c.p1[r], c.p2[r] = st.Coef[r], e2, c.u2[r]
		}
	}
	var pd [3]devPtr
	var err error
	for k, v := range [][]float32{c.p0, c.p1, c.p2} {
		if pd[k], err = upload(c, fmt.Sprintf("p%d", k), v); err != nil {
			return err
		}
	}
	gd, err := c.buf("grad", n*d*4)
	if err != nil {
		return err
	}
	c.flag32[0] = 0
	badd, err := upload(c, "badGrad", c.flag32)
	if err != nil {
		return err
	}
	w := backwardWidth(dp)
	sc := 0
	if supcon {
		sc = 1
	}
	if err := c.launch(fmt.Sprintf("backward_%s_d%d", c.prec, w), [3]int{np / cudaRows, (dp + w - 1) / w, 1},
		kargs{}.ptr(zs).ptr(labd).ptr(orderd).i32(n).i32(d).i32(dp).f32(scale2).f32(invTau).i32(sc).
			ptr(pd[0]).ptr(pd[1]).ptr(pd[2]).ptr(gd).ptr(badd)); err != nil {
		return err
	}
	if err := download(c, c.flag32, "badGrad"); err != nil {
		return err
	}
	if c.flag32[0] != 0 {
		return errors.New("backward kernel produced a NaN or infinite gradient")
	}
	return download(c, grad, "grad")
}

// lse2 turns a base-2 online log-sum-exp state (the sum is of 2^(t - m))
// into a natural log-sum-exp.
func lse2(m float32, sum float64) float64 {
	if sum == 0 || math.IsInf(float64(m), -1) {
		return math.Inf(-1)
	}
	return (float64(m) + math.Log2(sum)) * math.Ln2
}

// L2Normalize sets each row of y (rows x cols, host memory) to the row of x
// over its norm, on the GPU, and returns the norms.
func (c *LossEngine) L2Normalize(rows, cols int, x, y []float32) ([]float32, error) {
	if rows < 1 || cols < 1 || len(x) != rows*cols || len(y) != rows*cols {
		return nil, fmt.Errorf("l2 normalize: want %d x %d values, got %d and %d", rows, cols, len(x), len(y))
	}
	xd, err := upload(c, "l2x", x)
	if err != nil {
		return nil, err
	}
	yd, err := c.buf("l2y", rows*cols*4)
	if err != nil {
		return nil, err
	}
	nd, err := c.buf("l2norms", rows*4)
	if err != nil {
		return nil, err
	}
	c.prof = kernels.CUDAProfile{}
	if err := c.launch("l2_normalize", [3]int{(rows + 7) / 8, 1, 1}, kargs{}.ptr(xd).i32(rows).i32(cols).ptr(yd).ptr(nd)); err != nil {
		return nil, err
	}
	norms := make([]float32, rows)
	if err := errors.Join(download(c, y, "l2y"), download(c, norms, "l2norms")); err != nil {
		return nil, err
	}
	return norms, nil
}

// L2NormalizeBackward sets dx = (dy - y (y . dy)) / norm, row by row, on the
// GPU (host memory in and out).
func (c *LossEngine) L2NormalizeBackward(rows, cols int, y, norms, dy, dx []float32) error {
	if rows < 1 || cols < 1 || len(y) != rows*cols || len(dy) != rows*cols || len(dx) != rows*cols || len(norms) != rows {
		return fmt.Errorf("l2 normalize backward: want %d x %d values and %d norms", rows, cols, rows)
	}
	yd, err := upload(c, "l2y", y)
	if err != nil {
		return err
	}
	nd, err := upload(c, "l2norms", norms)
	if err != nil {
		return err
	}
	gd, err := upload(c, "l2dy", dy)
	if err != nil {
		return err
	}
	xd, err := c.buf("l2x", rows*cols*4)
	if err != nil {
		return err
	}
	c.prof = kernels.CUDAProfile{}
	if err := c.launch("l2_normalize_backward", [3]int{(rows + 7) / 8, 1, 1},
		kargs{}.ptr(yd).ptr(nd).ptr(gd).i32(rows).i32(cols).ptr(xd)); err != nil {
		return err
	}
	return download(c, dx, "l2x")
}
