//go:build gpu || gpuemu

package cuda

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// Device is the CUDA kernels.Device: every method is one or a few kernel
// launches queued on one stream (elementwise.cu, norm.cu, gemm.cu, conv.cu,
// loss.cu), and only the methods that return values to the host wait for
// the GPU. Reductions split across blocks go through partial sums in
// scratch memory that a second kernel adds in a fixed order, so a result
// depends only on the inputs and the GPU model. A Device must not be used
// by two goroutines at once; Close releases the GPU.
type Device struct {
	drv  gpuDriver
	info kernels.GPUInfo
	// prec is the matrix products' precision: fp32, or tf32 on tensor
	// cores; lossPrec the contrastive loss tiles' (tf32x3 or fp32).
	prec, lossPrec string

	faults kernels.Faults
	stats  kernels.MemStats
	// scratch holds the device's own buffers (partial sums, workspaces),
	// grown on first use and kept.
	scratch map[string]*devBuf
	// labels keeps a host copy of every label array uploaded, by address:
	// the loss sorts rows by label on the host, and the cross entropy
	// checks them, without a download.
	labels map[devPtr][]int32
	timer  timer
	loss   deviceLoss
	closed bool
	// profile makes every launch mark the timer with its kernel's name
	// (the loss engine's per-kernel times).
	profile bool
	staging []float64 // ReadScalars' host side
}

// devBuf is a device allocation that grows as needed.
type devBuf struct {
	p     devPtr
	bytes int
}

// newDevice returns a device over a driver, with its precision resolved:
// tf32 where there are TF32 tensor cores (compute capability 8.0 and
// newer), as PyTorch computes convolutions by default, else fp32.
func newDevice(drv gpuDriver, opt kernels.CUDAOptions) (*Device, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	info := drv.Info()
	tc := info.Major >= 8
	d := &Device{drv: drv, info: info, prec: kernels.PrecisionFP32, lossPrec: kernels.PrecisionFP32,
		scratch: map[string]*devBuf{}, labels: map[devPtr][]int32{}}
	if tc {
		d.prec, d.lossPrec = kernels.PrecisionTF32, kernels.PrecisionTF32x3
	}
	switch opt.Precision {
	case "", kernels.PrecisionAuto:
	case kernels.PrecisionFP32:
		d.prec = kernels.PrecisionFP32
	case kernels.PrecisionTF32:
		if !tc {
			return nil, fmt.Errorf("precision tf32 needs TF32 tensor cores (compute capability 8.0 or newer); %s has %d.%d: use fp32",
				info.Name, info.Major, info.Minor)
		}
	default:
		return nil, fmt.Errorf("training precision %s: want tf32 or fp32 (tf32x3 is the loss's alone)", opt.Precision)
	}
	d.timer.dev = d
	return d, nil
}

// Name returns "cuda".
func (d *Device) Name() string { return kernels.DeviceCUDA }

// Describe names the GPU and the precision of the products.
func (d *Device) Describe() string {
	return fmt.Sprintf("cuda: %s (compute %d.%d, %d SMs, %.0f GiB), %s products, %s loss tiles", d.info.Name, d.info.Major, d.info.Minor,
		d.info.SMs, float64(d.info.Memory)/(1<<30), d.prec, d.lossPrec)
}

// Info describes the GPU.
func (d *Device) Info() kernels.GPUInfo { return d.info }

// Precision is the matrix products' precision: fp32 or tf32.
func (d *Device) Precision() string { return d.prec }

// Close frees the device's scratch memory and the context; arenas must be
// freed before.
func (d *Device) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var first error
	for name, b := range d.scratch {
		if err := d.drv.Free(b.p, b.bytes); err != nil && first == nil {
			first = fmt.Errorf("free %s: %w", name, err)
		}
	}
	d.scratch = nil
	if err := d.drv.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// memory is an allocation of the CUDA device.
type memory struct {
	dev   *Device
	p     devPtr
	bytes int
	freed bool
}

// Bytes is the size of the allocation.
func (m *memory) Bytes() int { return m.bytes }

// account records bytes allocated (or, negative, freed).
func (d *Device) account(bytes int) {
	if bytes > 0 {
		d.stats.Allocs++
	}
	d.stats.InUse += int64(bytes)
	d.stats.Peak = max(d.stats.Peak, d.stats.InUse)
}

// Alloc returns zeroed device memory; out of memory fails at once.
func (d *Device) Alloc(bytes int) (kernels.Memory, error) {
	if bytes < 0 {
		return nil, fmt.Errorf("cuda: allocation of %d bytes", bytes)
	}
	size := max((bytes+15)&^15, 16)
	p, err := d.drv.Alloc(size)
	if err != nil {
		return nil, fmt.Errorf("cuda: allocate %d bytes (%d in use): %w", bytes, d.stats.InUse, err)
	}
	d.account(size)
	m := &memory{dev: d, p: p, bytes: size}
	d.launchFlat("fill_f32", int64(size/4), kargs{}.ptr(p).i64(size/4).f32(0))
	return m, nil
}

// Free releases an allocation.
func (d *Device) Free(mem kernels.Memory) error {
	m, ok := mem.(*memory)
	if !ok || m.dev != d {
		return fmt.Errorf("cuda: free of %T, not this device's memory", mem)
	}
	if m.freed {
		return fmt.Errorf("cuda: memory freed twice")
	}
	m.freed = true
	for p := range d.labels {
		if p >= m.p && p < m.p+devPtr(m.bytes) {
			delete(d.labels, p)
			d.forgetSort(p)
		}
	}
	d.account(-m.bytes)
	return d.drv.Free(m.p, m.bytes)
}

// MemStats reports the arenas and the device's scratch together.
func (d *Device) MemStats() kernels.MemStats { return d.stats }

// scratchBuf returns the device scratch buffer name of at least bytes,
// growing it (an allocation, counted) when it is too small.
func (d *Device) scratchBuf(name string, bytes int) (devPtr, error) {
	b := d.scratch[name]
	if b == nil {
		b = &devBuf{}
		d.scratch[name] = b
	}
	if b.bytes >= bytes {
		return b.p, nil
	}
	if b.p != 0 {
		if err := d.drv.Free(b.p, b.bytes); err != nil {
			return 0, err
		}
		d.account(-b.bytes)
		b.p, b.bytes = 0, 0
	}
	size := max((bytes+255)&^255, 256)
	p, err := d.drv.Alloc(size)
	if err != nil {
		return 0, fmt.Errorf("cuda: scratch %s of %d bytes: %w", name, size, err)
	}
	d.account(size)
	b.p, b.bytes = p, size
	return p, nil
}

// addr returns the device address of a view's first value (0 for a nil
// view); elem is the view's element size.
func addr(mem kernels.Memory, off, elem int) devPtr {
	if mem == nil {
		return 0
	}
	return mem.(*memory).p + devPtr(off*elem)
}

func f32p(b kernels.Buffer) devPtr { m, off := b.Mem(); return addr(m, off, 4) }
func i32p(b kernels.Ints) devPtr   { m, off := b.Mem(); return addr(m, off, 4) }
func f64p(b kernels.Scalars) devPtr {
	m, off := b.Mem()
	return addr(m, off, 8)
}

// aligned16 reports whether every address is 16-byte aligned (for the
// kernels' 16-byte loads).
func aligned16(ps ...devPtr) bool {
	for _, p := range ps {
		if p%16 != 0 {
			return false
		}
	}
	return true
}

// begin starts an operation: it reports whether the work should be
// queued. It is not when an earlier failure waits for a sync, when err
// (the operation's own validation) is not nil, or when a view is not this
// device's live memory; the failure is then recorded for the next sync.
func (d *Device) begin(op string, sz fmt.Stringer, err error, views ...interface{ Mem() (kernels.Memory, int) }) bool {
	if d.faults.Failed() {
		return false
	}
	if err == nil && d.closed {
		err = fmt.Errorf("the device is closed")
	}
	if err == nil {
		for _, v := range views {
			mem, _ := v.Mem()
			if mem == nil {
				continue
			}
			m, ok := mem.(*memory)
			if !ok || m.dev != d {
				err = fmt.Errorf("a buffer of another device (%T)", mem)
				break
			}
			if m.freed {
				err = fmt.Errorf("a buffer whose memory was freed")
				break
			}
		}
	}
	if err != nil {
		d.faults.Add(op, sz.String(), err)
		return false
	}
	return true
}

// fail records a failure of the driver (a launch or a copy) for the next
// sync.
func (d *Device) fail(op string, err error) {
	if err != nil {
		d.faults.Add(op, "", err)
	}
}

// threads is the block size of every kernel.
const threads = 256

// launch queues a kernel on grid blocks of 256 threads.
func (d *Device) launch(kernel string, grid [3]int, args kargs) {
	if d.faults.Failed() {
		return
	}
	d.fail(kernel, d.drv.Launch(kernel, grid, [3]int{threads, 1, 1}, args))
	if d.profile {
		d.timer.Mark(kernel)
	}
}

// flatGrid is the grid of the elementwise kernels over n values: each
// thread takes a float4 per pass, and a few thousand blocks fill any GPU.
func flatGrid(n int64) [3]int {
	return [3]int{int(max(1, min((n+1023)/1024, 4096))), 1, 1}
}

// launchFlat queues an elementwise kernel over n values.
func (d *Device) launchFlat(kernel string, n int64, args kargs) {
	if n > 0 {
		d.launch(kernel, flatGrid(n), args)
	}
}

// Sync waits for the GPU and returns the first failure since the last
// sync: a recorded one, else one the GPU raised.
func (d *Device) Sync() error {
	if err := d.faults.Take(); err != nil {
		_ = d.drv.Sync() // drain the queue; the first failure is the one to report
		d.loss.checks = d.loss.checks[:0]
		return err
	}
	if err := d.drv.Sync(); err != nil {
		d.loss.checks = d.loss.checks[:0]
		return &kernels.OpError{Op: "cuda", Err: err}
	}
	return d.readChecks()
}

// Upload copies src into dst.
func (d *Device) Upload(dst kernels.Buffer, src []float32) {
	if d.begin("upload", kernels.Values(len(src)), kernels.CheckLens(kernels.Need("destination", dst, len(src))), dst) && len(src) > 0 {
		d.fail("upload", d.drv.Upload(f32p(dst), unsafe.Pointer(&src[0]), 4*len(src)))
	}
}

// UploadInts copies src into dst and keeps a host copy for the operations
// that read labels on the host (the loss's sort, the cross entropy's
// check).
func (d *Device) UploadInts(dst kernels.Ints, src []int32) {
	if !d.begin("upload", kernels.Values(len(src)), kernels.CheckLens(kernels.Need("destination", dst, len(src))), dst) || len(src) == 0 {
		return
	}
	p := i32p(dst)
	d.labels[p] = append(d.labels[p][:0], src...)
	d.fail("upload", d.drv.Upload(p, unsafe.Pointer(&src[0]), 4*len(src)))
	d.fail("upload", d.sortLabels(p, src))
}

// hostLabels returns the host copy of an uploaded label array.
func (d *Device) hostLabels(b kernels.Ints) ([]int32, error) {
	v, ok := d.labels[i32p(b)]
	if !ok || len(v) < b.Len() {
		return nil, fmt.Errorf("labels that were not uploaded with UploadInts")
	}
	return v[:b.Len()], nil
}

// Download copies src into dst. It syncs.
func (d *Device) Download(dst []float32, src kernels.Buffer) error {
	if d.begin("download", kernels.Values(len(dst)), kernels.CheckLens(kernels.Need("source", src, len(dst))), src) && len(dst) > 0 {
		d.fail("download", d.drv.Download(unsafe.Pointer(&dst[0]), f32p(src), 4*len(dst)))
	}
	return d.Sync()
}

// ReadScalars copies src into dst. It syncs. The copy goes through a
// staging slice of the device's own: cgo refuses host memory inside an
// allocation that holds Go pointers (a struct's array field, say), and
// scalars are small.
func (d *Device) ReadScalars(dst []float64, src kernels.Scalars) error {
	if d.begin("read scalars", kernels.Values(len(dst)), kernels.CheckLens(kernels.Need("source", src, len(dst))), src) && len(dst) > 0 {
		if cap(d.staging) < len(dst) {
			d.staging = make([]float64, len(dst))
		}
		s := d.staging[:len(dst)]
		err := d.drv.Download(unsafe.Pointer(&s[0]), f64p(src), 8*len(dst))
		d.fail("read scalars", err)
		if err == nil {
			copy(dst, s)
		}
	}
	return d.Sync()
}

// Copy copies src into dst.
func (d *Device) Copy(dst, src kernels.Buffer) {
	if d.begin("copy", kernels.Values(src.Len()), kernels.CheckLens(kernels.Need("destination", dst, src.Len())), dst, src) {
		d.launchFlat("copy_f32", int64(src.Len()), kargs{}.ptr(f32p(dst)).ptr(f32p(src)).i64(src.Len()))
	}
}

// Fill sets every value to v.
func (d *Device) Fill(dst kernels.Buffer, v float32) {
	if d.begin("fill", kernels.Values(dst.Len()), nil, dst) {
		d.launchFlat("fill_f32", int64(dst.Len()), kargs{}.ptr(f32p(dst)).i64(dst.Len()).f32(v))
	}
}

// trans names a transpose in kernel names.
func trans(t bool) string {
	if t {
		return "t"
	}
	return "n"
}

// Gemm runs gemm.cu's tiled product.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, beta float32, c kernels.Buffer, ldc int) {
	sz := kernels.Sizes(func() string { return kernels.GemmSizes(transA, transB, m, n, k) })
	if !d.begin("gemm", sz, kernels.CheckGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc), a, b, c) || m == 0 || n == 0 {
		return
	}
	pa, pb := f32p(a), f32p(b)
	vec := "s1"
	if aligned16(pa, pb) && lda%4 == 0 && ldb%4 == 0 {
		vec = "v4"
	}
	name := fmt.Sprintf("gemm_%s_%s%s_%s", d.prec, trans(transA), trans(transB), vec)
	d.launch(name, [3]int{(n + 127) / 128, (m + 127) / 128, 1},
		kargs{}.i32(m).i32(n).i32(k).f32(alpha).ptr(pa).i32(lda).ptr(pb).i32(ldb).f32(beta).ptr(f32p(c)).i32(ldc))
}

// AddBias adds bias to every row.
func (d *Device) AddBias(y kernels.Buffer, rows, cols int, bias kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("y", y, rows*cols), kernels.Need("bias", bias, cols))
	if d.begin("add bias", kernels.RowsCols(rows, cols), err, y, bias) {
		d.launchFlat("bias_add_f32", int64(rows*cols), kargs{}.ptr(f32p(y)).i32(rows).i32(cols).ptr(f32p(bias)))
	}
}

// colChunks is how a column reduction over rows splits into chunks of
// rows, from the shape alone (elementwise.cu's colReduceChunk): at most
// 1024 blocks, at least 64 rows each, chunkRows a multiple of 8.
func colChunks(rows, cols int) (chunks, chunkRows int) {
	colBlocks := (cols + 31) / 32
	chunks = max(1, min((rows+63)/64, (1024+colBlocks-1)/colBlocks))
	chunkRows = ((rows+chunks-1)/chunks + 7) / 8 * 8
	return (rows + chunkRows - 1) / chunkRows, chunkRows
}

// SumRows adds the column sums to db: per-chunk partial sums in float64,
// then the chunks in order.
func (d *Device) SumRows(dy kernels.Buffer, rows, cols int, db kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("dy", dy, rows*cols), kernels.Need("db", db, cols))
	if !d.begin("sum rows", kernels.RowsCols(rows, cols), err, dy, db) || rows == 0 || cols == 0 {
		return
	}
	chunks, chunkRows := colChunks(rows, cols)
	part, err := d.scratchBuf("sum rows", 8*chunks*cols)
	if err != nil {
		d.fail("sum rows", err)
		return
	}
	direct := 0
	if chunks == 1 {
		direct = 1
	}
	d.launch("sum_rows_partial", [3]int{(cols + 31) / 32, chunks, 1},
		kargs{}.ptr(f32p(dy)).i32(rows).i32(cols).i32(chunkRows).ptr(part).ptr(f32p(db)).i32(direct))
	if chunks > 1 {
		d.launch("sum_rows_finish", [3]int{(cols + 31) / 32, 1, 1}, kargs{}.ptr(part).i32(chunks).i32(cols).ptr(f32p(db)))
	}
}

// ReLU sets y = max(x, 0).
func (d *Device) ReLU(x, y kernels.Buffer) {
	if d.begin("relu", kernels.Values(x.Len()), kernels.SameLens(x.Len(), []string{"y"}, y), x, y) {
		d.launchFlat("relu_f32", int64(x.Len()), kargs{}.ptr(f32p(x)).ptr(f32p(y)).i64(x.Len()))
	}
}

// ReLUBackward passes dy where y > 0.
func (d *Device) ReLUBackward(y, dy, dx kernels.Buffer) {
	if d.begin("relu backward", kernels.Values(y.Len()), kernels.SameLens(y.Len(), []string{"dy", "dx"}, dy, dx), y, dy, dx) {
		d.launchFlat("relu_backward_f32", int64(y.Len()), kargs{}.ptr(f32p(y)).ptr(f32p(dy)).ptr(f32p(dx)).i64(y.Len()))
	}
}

// Add sets y = a + b.
func (d *Device) Add(a, b, y kernels.Buffer) {
	if d.begin("add", kernels.Values(a.Len()), kernels.SameLens(a.Len(), []string{"b", "y"}, b, y), a, b, y) {
		d.launchFlat("add_f32", int64(a.Len()), kargs{}.ptr(f32p(a)).ptr(f32p(b)).ptr(f32p(y)).i64(a.Len()))
	}
}

// GlobalAvgPool averages each channel over the pixels of each image.
func (d *Device) GlobalAvgPool(n, hw, c int, x, y kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("x", x, n*hw*c), kernels.Need("y", y, n*c))
	if d.begin("global average pool", kernels.RowsCols(n*hw, c), err, x, y) && n*c > 0 {
		d.launch("gap_forward_f32", [3]int{min((n*c+threads-1)/threads, 65535), 1, 1},
			kargs{}.ptr(f32p(x)).i32(n).i32(hw).i32(c).ptr(f32p(y)))
	}
}

// GlobalAvgPoolBackward spreads dy / hw over every pixel.
func (d *Device) GlobalAvgPoolBackward(n, hw, c int, dy, dx kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("dy", dy, n*c), kernels.Need("dx", dx, n*hw*c))
	if d.begin("global average pool backward", kernels.RowsCols(n*hw, c), err, dy, dx) {
		d.launchFlat("gap_backward_f32", int64(n*hw*c), kargs{}.ptr(f32p(dy)).i32(n).i32(hw).i32(c).ptr(f32p(dx)))
	}
}

// L2Normalize divides each row by its norm: one warp per row.
func (d *Device) L2Normalize(rows, cols int, x, y, norms kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("x", x, rows*cols), kernels.Need("y", y, rows*cols), kernels.Need("norms", norms, rows))
	if d.begin("l2 normalize", kernels.RowsCols(rows, cols), err, x, y, norms) && rows > 0 {
		d.launch("l2_normalize", [3]int{(rows + 7) / 8, 1, 1}, kargs{}.ptr(f32p(x)).i32(rows).i32(cols).ptr(f32p(y)).ptr(f32p(norms)))
	}
}

// L2NormalizeBackward projects dy onto the tangent space and scales it.
func (d *Device) L2NormalizeBackward(rows, cols int, y, norms, dy, dx kernels.Buffer) {
	err := kernels.CheckLens(kernels.Need("y", y, rows*cols), kernels.Need("norms", norms, rows),
		kernels.Need("dy", dy, rows*cols), kernels.Need("dx", dx, rows*cols))
	if d.begin("l2 normalize backward", kernels.RowsCols(rows, cols), err, y, norms, dy, dx) && rows > 0 {
		d.launch("l2_normalize_backward", [3]int{(rows + 7) / 8, 1, 1},
			kargs{}.ptr(f32p(y)).ptr(f32p(norms)).ptr(f32p(dy)).i32(rows).i32(cols).ptr(f32p(dx)))
	}
}

// reduceF64 queues *out = scale * sum x[0:n], added in a fixed order.
func (d *Device) reduceF64(x devPtr, n int, scale float64, out devPtr) {
	d.launch("reduce_f64", [3]int{1, 1, 1}, kargs{}.ptr(x).i32(n).f64(scale).ptr(out))
}

// SoftmaxCrossEntropy is the mean cross entropy: per-row losses, then their
// sum in a fixed order.
func (d *Device) SoftmaxCrossEntropy(rows, classes int, logits kernels.Buffer, labels kernels.Ints, dlogits kernels.Buffer, loss kernels.Scalars) {
	err := kernels.CheckLens(kernels.Need("logits", logits, rows*classes), kernels.Need("labels", labels, rows),
		kernels.Need("dlogits", dlogits, rows*classes), kernels.Need("loss", loss, 1))
	if err == nil && rows < 1 {
		err = fmt.Errorf("no rows")
	}
	var host []int32
	if err == nil {
		if host, err = d.hostLabels(labels); err == nil {
			for r, y := range host {
				if y < 0 || int(y) >= classes {
					err = fmt.Errorf("row %d has label %d, want 0 to %d", r, y, classes-1)
					break
				}
			}
		}
	}
	if !d.begin("softmax cross entropy", kernels.RowsCols(rows, classes), err, logits, labels, dlogits, loss) {
		return
	}
	rowLoss, err := d.scratchBuf("cross entropy", 8*rows)
	if err != nil {
		d.fail("softmax cross entropy", err)
		return
	}
	d.launch("softmax_xent_f32", [3]int{(rows + 7) / 8, 1, 1},
		kargs{}.ptr(f32p(logits)).i32(rows).i32(classes).ptr(i32p(labels)).ptr(f32p(dlogits)).ptr(rowLoss))
	d.reduceF64(rowLoss, rows, 1/float64(rows), f64p(loss))
}

// sumSquaresChunk is the values each block of sum_squares_partial covers.
const sumSquaresChunk = 8192

// SumSquares sums x^2 in float64: per-block sums, then the blocks in order.
func (d *Device) SumSquares(x kernels.Buffer, out kernels.Scalars) {
	if !d.begin("sum of squares", kernels.Values(x.Len()), kernels.CheckLens(kernels.Need("out", out, 1)), x, out) {
		return
	}
	blocks := max(1, (x.Len()+sumSquaresChunk-1)/sumSquaresChunk)
	part, err := d.scratchBuf("sum of squares", 8*blocks)
	if err != nil {
		d.fail("sum of squares", err)
		return
	}
	if x.Len() == 0 {
		d.reduceF64(part, 0, 1, f64p(out))
		return
	}
	d.launch("sum_squares_partial", [3]int{blocks, 1, 1}, kargs{}.ptr(f32p(x)).i64(x.Len()).ptr(part))
	d.reduceF64(part, blocks, 1, f64p(out))
}

// SGD is PyTorch's SGD step with momentum and weight decay, skipped on the
// device when the guard holds a NaN or Inf.
func (d *Device) SGD(w, g, v kernels.Buffer, lr, momentum, decay float32, guard kernels.Scalars) {
	if d.begin("sgd", kernels.Values(w.Len()), kernels.SameLens(w.Len(), []string{"g", "v"}, g, v), w, g, v, guard) {
		d.launchFlat("sgd_f32", int64(w.Len()), kargs{}.ptr(f32p(w)).ptr(f32p(g)).ptr(f32p(v)).i64(w.Len()).
			f32(lr).f32(momentum).f32(decay).ptr(f64p(guard)).i32(guard.Len()))
	}
}

// convKernel names a convolution kernel: the product, the precision, the
// tile (128x64 when the product's N is at most 64) and the loads (16-byte
// when the channel counts are multiples of 4 and the pointers aligned).
func (d *Device) convKernel(product string, n int, g kernels.ConvGeom, ps ...devPtr) (string, int) {
	tile, bn := "128x128", 128
	if n <= 64 {
		tile, bn = "128x64", 64
	}
	vec := "s1"
	if g.C%4 == 0 && g.K%4 == 0 && aligned16(ps...) {
		vec = "v4"
	}
	return fmt.Sprintf("conv_%s_%s_%s_%s", product, d.prec, tile, vec), bn
}

// Conv2D is conv.cu's forward product.
func (d *Device) Conv2D(g kernels.ConvGeom, x, w, y kernels.Buffer) {
	if !d.begin("conv2d", g, g.Check(x, w, y), x, w, y) {
		return
	}
	px, pw, py := f32p(x), f32p(w), f32p(y)
	name, bn := d.convKernel("fprop", g.K, g, px, pw, py)
	d.launch(name, [3]int{(g.K + bn - 1) / bn, (g.N*g.OutH()*g.OutW() + 127) / 128, 1}, kargs{}.ptr(px).ptr(pw).ptr(py).geom(g))
}

// wgradSplits is how the filter gradient's reduction over the output
// pixels splits into slices, from the shape alone (conv.cu): enough blocks
// to fill the GPU when the reduction is long, at least 512 pixels a slice.
func wgradSplits(g kernels.ConvGeom, bn int) (splits, kChunk int) {
	tiles := (g.R*g.S*g.C + 127) / 128 * ((g.K + bn - 1) / bn)
	kr := g.N * g.OutH() * g.OutW()
	splits = max(1, min((512+tiles-1)/tiles, (kr+511)/512))
	kChunk = ((kr+splits-1)/splits + 15) / 16 * 16
	return (kr + kChunk - 1) / kChunk, kChunk
}

// Conv2DBackward adds dL/dw to a.DW (split over the output pixels, the
// slices added in order) and, unless a.DX is nil, sets a.DX.
func (d *Device) Conv2DBackward(a kernels.ConvBackward) {
	g := a.Geom
	if !d.begin("conv2d backward", g, a.Check(), a.X, a.W, a.DY, a.DX, a.DW) {
		return
	}
	px, pw, pdy, pdw := f32p(a.X), f32p(a.W), f32p(a.DY), f32p(a.DW)
	name, bn := d.convKernel("wgrad", g.K, g, px, pdy, pdw)
	splits, kChunk := wgradSplits(g, bn)
	grid := [3]int{(g.K + bn - 1) / bn, (g.R*g.S*g.C + 127) / 128, splits}
	if splits == 1 {
		d.launch(name, grid, kargs{}.ptr(px).ptr(pdy).ptr(pdw).geom(g).i32(kChunk).i32(1))
	} else {
		count := g.FilterLen()
		ws, err := d.scratchBuf("filter gradient", 4*splits*count)
		if err != nil {
			d.fail("conv2d backward", err)
			return
		}
		d.launch(name, grid, kargs{}.ptr(px).ptr(pdy).ptr(ws).geom(g).i32(kChunk).i32(0))
		d.launch("conv_wgrad_reduce", [3]int{min((count+threads-1)/threads, 4096), 1, 1},
			kargs{}.ptr(ws).i32(splits).i64(count).ptr(pdw))
	}
	if a.DX.IsNil() {
		return
	}
	pdx := f32p(a.DX)
	name, bn = d.convKernel("dgrad", g.C, g, pdy, pw, pdx)
	s := g.Stride
	rows := g.N * ((g.H + s - 1) / s) * ((g.W + s - 1) / s)
	d.launch(name, [3]int{(g.C + bn - 1) / bn, (rows + 127) / 128, s * s}, kargs{}.ptr(pdy).ptr(pw).ptr(pdx).geom(g))
}

// bnScratch returns batch norm's scratch: the partial sums (2 c chunks
// float64) and the per-channel coefficients (3 c floats).
func (d *Device) bnScratch(c, chunks int) (part, coef devPtr, err error) {
	if part, err = d.scratchBuf("batch norm sums", 16*c*chunks); err != nil {
		return 0, 0, err
	}
	coef, err = d.scratchBuf("batch norm coefficients", 12*c)
	return part, coef, err
}

// flag is a kernel's boolean argument: 1 or 0.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BatchNormTrain normalises each channel by its batch statistics: partial
// sums per chunk of rows, the statistics in order, then the affine pass.
func (d *Device) BatchNormTrain(a kernels.BatchNorm) {
	if !d.begin("batch norm", kernels.Sizes(a.Sizes), a.Check(true), a.X, a.Gamma, a.Beta, a.RunMean, a.RunVar, a.Mean, a.InvStd, a.Y) {
		return
	}
	chunks, chunkRows := colChunks(a.Rows, a.C)
	part, affine, err := d.bnScratch(a.C, chunks)
	if err != nil {
		d.fail("batch norm", err)
		return
	}
	cb := (a.C + 31) / 32
	d.launch("bn_stats_partial", [3]int{cb, chunks, 1}, kargs{}.ptr(f32p(a.X)).i32(a.Rows).i32(a.C).i32(chunkRows).ptr(part))
	d.launch("bn_stats_finish", [3]int{cb, 1, 1}, kargs{}.ptr(part).i32(chunks).i32(a.Rows).i32(a.C).ptr(f32p(a.X)).
		ptr(f32p(a.Gamma)).ptr(f32p(a.Beta)).f32(a.Eps).f32(a.Momentum).ptr(f32p(a.RunMean)).ptr(f32p(a.RunVar)).
		ptr(f32p(a.Mean)).ptr(f32p(a.InvStd)).ptr(affine))
	d.launchFlat("bn_apply", int64(a.Rows*a.C), kargs{}.ptr(f32p(a.X)).i32(a.Rows).i32(a.C).ptr(affine).ptr(0).i32(flag(a.ReLU)).ptr(f32p(a.Y)))
}

// BatchNormEval normalises with the running statistics.
func (d *Device) BatchNormEval(a kernels.BatchNorm) {
	if !d.begin("batch norm (evaluation)", kernels.Sizes(a.Sizes), a.Check(false), a.X, a.Gamma, a.Beta, a.RunMean, a.RunVar, a.Y) {
		return
	}
	_, affine, err := d.bnScratch(a.C, 1)
	if err != nil {
		d.fail("batch norm (evaluation)", err)
		return
	}
	d.launch("bn_eval_prepare", [3]int{(a.C + threads - 1) / threads, 1, 1}, kargs{}.ptr(f32p(a.Gamma)).ptr(f32p(a.Beta)).
		ptr(f32p(a.RunMean)).ptr(f32p(a.RunVar)).i32(a.C).f32(a.Eps).ptr(affine))
	d.launchFlat("bn_apply", int64(a.Rows*a.C), kargs{}.ptr(f32p(a.X)).i32(a.Rows).i32(a.C).ptr(affine).ptr(0).i32(flag(a.ReLU)).ptr(f32p(a.Y)))
}

// BatchNormBackward sets dx and adds dgamma and dbeta.
func (d *Device) BatchNormBackward(a kernels.BatchNormGrad) {
	if !d.begin("batch norm backward", kernels.Sizes(a.Sizes), a.Check(), a.X, a.Y, a.Gamma, a.Mean, a.InvStd, a.DY, a.DX, a.DGamma, a.DBeta) {
		return
	}
	chunks, chunkRows := colChunks(a.Rows, a.C)
	part, coef, err := d.bnScratch(a.C, chunks)
	if err != nil {
		d.fail("batch norm backward", err)
		return
	}
	cb := (a.C + 31) / 32
	py := f32p(a.Y) // 0 without the fused ReLU
	d.launch("bn_backward_partial", [3]int{cb, chunks, 1}, kargs{}.ptr(f32p(a.X)).ptr(py).ptr(f32p(a.DY)).i32(a.Rows).i32(a.C).
		i32(chunkRows).ptr(f32p(a.Mean)).ptr(f32p(a.InvStd)).ptr(part))
	d.launch("bn_backward_finish", [3]int{cb, 1, 1}, kargs{}.ptr(part).i32(chunks).i32(a.Rows).i32(a.C).ptr(f32p(a.Gamma)).
		ptr(f32p(a.InvStd)).ptr(f32p(a.DGamma)).ptr(f32p(a.DBeta)).ptr(coef))
	d.launchFlat("bn_backward_apply", int64(a.Rows*a.C), kargs{}.ptr(f32p(a.X)).ptr(py).ptr(f32p(a.DY)).i32(a.Rows).i32(a.C).
		ptr(f32p(a.Mean)).ptr(f32p(a.InvStd)).ptr(coef).ptr(f32p(a.DX)).ptr(0))
}

// Timer returns the device's timer: events in the stream.
func (d *Device) Timer() kernels.Timer { return &d.timer }

// timer attributes the GPU time between events to names.
type timer struct {
	dev   *Device
	names []string // the name of the interval that ends at each mark after the first
	spans []kernels.Span
	base  int // the mark that begins the current interval; -1 before Start
}

func (t *timer) Start() {
	t.names = t.names[:0]
	t.dev.drv.ResetMarks()
	at, err := t.dev.drv.Mark()
	t.dev.fail("timer", err)
	t.base = at
}

func (t *timer) Mark(name string) {
	if _, err := t.dev.drv.Mark(); err != nil {
		t.dev.fail("timer", err)
		return
	}
	t.names = append(t.names, name)
}

// Read waits for the last mark and adds the intervals since Start to the
// spans, which it returns and forgets. It syncs.
func (t *timer) Read() ([]kernels.Span, error) {
	for i, name := range t.names {
		ms, err := t.dev.drv.Elapsed(t.base+i, t.base+i+1)
		if err != nil {
			t.dev.fail("timer", err)
			break
		}
		t.add(name, ms)
	}
	t.names = t.names[:0]
	t.dev.drv.ResetMarks()
	t.base, _ = t.dev.drv.Mark()
	s := t.spans
	t.spans = nil
	return s, t.dev.Sync()
}

func (t *timer) add(name string, ms float64) {
	d := durationMS(ms)
	for i := range t.spans {
		if t.spans[i].Name == name {
			t.spans[i].Time += d
			return
		}
	}
	t.spans = append(t.spans, kernels.Span{Name: name, Time: d})
}

// durationMS converts milliseconds to a duration.
func durationMS(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// The Device methods are completed by ContrastiveLoss in device_loss.go.
var _ kernels.Device = (*Device)(nil)
