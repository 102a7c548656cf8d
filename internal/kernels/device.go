package kernels

import "time"

// Device owns memory and runs the primitives the encoder, the losses and the
// optimiser are made of. The package doc states the contract every backend
// keeps (asynchrony, errors, memory, layout, determinism); in short:
//
//   - Calls may run asynchronously, in the order they are made. Only the
//     methods whose doc says "It syncs" wait for the device, and they are
//     the only ones that report failures: Sync, Download, ReadScalars and
//     Timer.Read return the first failure since the last sync. After a
//     failure the device skips further work until a sync reports it.
//   - Memory comes from Alloc, in practice through arenas (NewArena); a
//     buffer of the wrong size or from another device is a failure of the
//     call that got it, not a panic.
//   - Parameter gradients (dw, dgamma, dbeta, db) are accumulated into;
//     every other output is overwritten. An output may alias an input only
//     where the method says so.
//
// A Device is used by one goroutine at a time; it may use many internally.
type Device interface {
	// Name is "cpu" or "cuda".
	Name() string
	// Describe says what the device is and which kernels it runs, for
	// logs: "cpu: avx2-fma kernels, 2 workers", say.
	Describe() string

	// Alloc returns bytes of device memory, zeroed. It fails at once
	// (not at the next sync) when the device is out of memory, naming the
	// size.
	Alloc(bytes int) (Memory, error)
	// Free releases memory from Alloc.
	Free(m Memory) error
	// MemStats reports what the device holds and has allocated.
	MemStats() MemStats

	// Upload copies host values into a buffer of the same length.
	Upload(dst Buffer, src []float32)
	// UploadInts copies host integers into an array of the same length.
	UploadInts(dst Ints, src []int32)
	// Download copies a buffer into host memory of the same length. It
	// syncs.
	Download(dst []float32, src Buffer) error
	// ReadScalars copies device scalars into host memory of the same
	// length. It syncs.
	ReadScalars(dst []float64, src Scalars) error
	// Sync waits for all work so far and returns the first failure since
	// the last sync (an operation given bad sizes, out of memory, a kernel
	// that failed, a NaN or Inf where an operation checks for one), naming
	// the operation and its sizes; the failure is then cleared.
	Sync() error
	// Timer returns the device's timer, which measures the device's own
	// time between marks.
	Timer() Timer

	// Copy copies src into dst, of the same length.
	Copy(dst, src Buffer)
	// Fill sets every value of dst to v.
	Fill(dst Buffer, v float32)

	// Gemm sets C = alpha op(A) op(B) + beta C, op(A) m x k and op(B)
	// k x n, row-major with leading dimensions lda, ldb, ldc (in values).
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int)
	// AddBias adds bias[j] to every y[i][j] of a rows x cols matrix.
	AddBias(y Buffer, rows, cols int, bias Buffer)
	// SumRows adds the column sums of a rows x cols matrix to db.
	SumRows(dy Buffer, rows, cols int, db Buffer)

	// Conv2D sets y (N x OutH x OutW x K) to the convolution of x
	// (N x H x W x C) with w (R x S x C x K).
	Conv2D(g ConvGeom, x, w, y Buffer)
	// Conv2DBackward adds dL/dw to a.DW and, unless a.DX is nil, sets
	// a.DX to dL/dx.
	Conv2DBackward(a ConvBackward)

	// BatchNormTrain normalises each channel of a.X by its batch mean and
	// variance (see BatchNorm).
	BatchNormTrain(a BatchNorm)
	// BatchNormEval normalises each channel of a.X with the running
	// statistics.
	BatchNormEval(a BatchNorm)
	// BatchNormBackward sets a.DX and adds dL/dgamma and dL/dbeta (see
	// BatchNormGrad).
	BatchNormBackward(a BatchNormGrad)

	// ReLU sets y = max(x, 0); y may be x.
	ReLU(x, y Buffer)
	// ReLUBackward sets dx = dy where y > 0, else 0; dx may be dy.
	ReLUBackward(y, dy, dx Buffer)
	// Add sets y = a + b; y may be a or b.
	Add(a, b, y Buffer)
	// GlobalAvgPool sets y[i][c] to the mean over the hw pixels of image i
	// (n x hw x c) of channel c.
	GlobalAvgPool(n, hw, c int, x, y Buffer)
	// GlobalAvgPoolBackward sets dx to dy[i][c] / hw at every pixel of
	// image i.
	GlobalAvgPoolBackward(n, hw, c int, dy, dx Buffer)
	// L2Normalize sets each row of y to the row of x divided by its norm
	// (at least 1e-12), saving the norms.
	L2Normalize(rows, cols int, x, y, norms Buffer)
	// L2NormalizeBackward sets dx = (dy - y (y . dy)) / norm, row by row.
	L2NormalizeBackward(rows, cols int, y, norms, dy, dx Buffer)

	// SoftmaxCrossEntropy sets loss[0] to the mean cross entropy of the
	// rows of logits against labels, and dlogits to its gradient.
	SoftmaxCrossEntropy(rows, classes int, logits Buffer, labels Ints, dlogits Buffer, loss Scalars)
	// ContrastiveLoss evaluates a fused contrastive loss of z (n x d, rows
	// L2-normalised by the caller) with the given labels, sets loss[0] to
	// it and, unless grad is nil, sets grad to dL/dz. A batch without
	// anchors (ErrNoAnchors) or a z that is not finite is a failure.
	ContrastiveLoss(p Params, z Buffer, n, d int, labels Ints, grad Buffer, loss Scalars)

	// SumSquares sets out[0] to the sum of the squares of x in float64,
	// summed in a fixed order.
	SumSquares(x Buffer, out Scalars)
	// SGD takes one step of SGD with momentum and weight decay, as PyTorch
	// defines it, over whole buffers (an arena's Floats): v = momentum v +
	// (g + decay w); w = w - lr v. When guard is not nil and any of its
	// values is NaN or infinite (a step's loss and squared gradient norm),
	// it changes nothing, so a bad step leaves the weights as they were
	// without a round trip to the host.
	SGD(w, g, v Buffer, lr, momentum, decay float32, guard Scalars)
}

// Timer measures a device's own time: on the CPU the wall clock, on a GPU
// events in the device's stream of work, so that a breakdown means the same
// on every backend.
type Timer interface {
	// Start begins an interval.
	Start()
	// Mark ends the current interval, attributing it to name, and begins
	// the next.
	Mark(name string)
	// Read returns the time attributed to each name since the last Read,
	// in the order the names first appeared, and starts afresh. It syncs.
	Read() ([]Span, error)
}

// Span is the time a Timer attributed to one name.
type Span struct {
	Name string
	Time time.Duration
}
