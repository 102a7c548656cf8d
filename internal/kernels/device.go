package kernels

import "fmt"

// Buffer is an array of float32 owned by a Device.
type Buffer interface {
	// Len is the number of values.
	Len() int
}

// HostBuffer is the CPU device's Buffer: ordinary Go memory.
type HostBuffer []float32

// Len returns len(b).
func (b HostBuffer) Len() int { return len(b) }

// ConvGeom describes a 2-D convolution of N images of H x W pixels with C
// channels by K filters of R x S taps, zero padding Pad and stride Stride.
// Images are channels-last (N x H x W x C) and filters R x S x C x K.
type ConvGeom struct {
	N, C, H, W  int
	K, R, S     int
	Stride, Pad int
}

// OutH and OutW are the output's height and width.
func (g ConvGeom) OutH() int { return (g.H+2*g.Pad-g.R)/g.Stride + 1 }

// OutW is the output's width.
func (g ConvGeom) OutW() int { return (g.W+2*g.Pad-g.S)/g.Stride + 1 }

// Validate reports a geometry that has no output.
func (g ConvGeom) Validate() error {
	if g.N < 1 || g.C < 1 || g.H < 1 || g.W < 1 || g.K < 1 || g.R < 1 || g.S < 1 || g.Stride < 1 || g.Pad < 0 {
		return fmt.Errorf("bad convolution %+v", g)
	}
	if g.OutH() < 1 || g.OutW() < 1 {
		return fmt.Errorf("convolution %+v has no output", g)
	}
	return nil
}

// Device owns buffers and runs the primitives the encoder and the losses
// are made of. Tensors are row-major; images are NCHW. Parameter gradients
// (dw, dgamma, dbeta, db) are accumulated into; every other output is
// overwritten. Images are channels-last (NHWC): a batch of images is a
// matrix of N*H*W rows of C channels. A Device is used by one goroutine at a
// time; it may use many internally.
type Device interface {
	// Name is "cpu" or "cuda".
	Name() string
	// Alloc returns a zeroed buffer of n values.
	Alloc(n int) Buffer
	// Upload copies host values into a buffer of the same length.
	Upload(dst Buffer, src []float32)
	// Download copies a buffer into host memory of the same length.
	Download(dst []float32, src Buffer)
	// Copy copies src into dst, of the same length.
	Copy(dst, src Buffer)
	// Fill sets every value of dst to v.
	Fill(dst Buffer, v float32)

	// Gemm sets C = alpha op(A) op(B) + beta C (op(A) is m x k, op(B) is
	// k x n; leading dimensions in values).
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int)
	// AddBias adds bias[j] to every y[i][j] of a rows x cols matrix.
	AddBias(y Buffer, rows, cols int, bias Buffer)
	// SumRows adds the column sums of a rows x cols matrix to db.
	SumRows(dy Buffer, rows, cols int, db Buffer)

	// Conv2D sets y (N x OutH x OutW x K) to the convolution of x with w.
	Conv2D(g ConvGeom, x, w, y Buffer)
	// Conv2DBackward adds dL/dw to dw and, when dx is not nil, sets dx.
	Conv2DBackward(g ConvGeom, x, w, dy, dx, dw Buffer)

	// BatchNormTrain normalises each of the c channels of x (rows x c) by
	// its batch mean and variance, scales and shifts it, saves the mean
	// and 1/sqrt(var + eps) for the backward pass, and moves the running
	// statistics: run = (1 - momentum) run + momentum batch (unbiased
	// variance), as PyTorch does. With relu, y = max(0, ...) in the same
	// pass.
	BatchNormTrain(rows, c int, x, gamma, beta Buffer, eps, momentum float32, relu bool, runMean, runVar, mean, invStd, y Buffer)
	// BatchNormEval normalises with the running statistics.
	BatchNormEval(rows, c int, x, gamma, beta, runMean, runVar Buffer, eps float32, relu bool, y Buffer)
	// BatchNormBackward sets dx and adds dL/dgamma and dL/dbeta. When y is
	// not nil it is the output of a fused ReLU, and dy counts only where
	// y > 0.
	BatchNormBackward(rows, c int, x, y, gamma, mean, invStd, dy, dx, dgamma, dbeta Buffer)

	// ReLU sets y = max(x, 0); y may be x.
	ReLU(x, y Buffer)
	// ReLUBackward sets dx = dy where y > 0, else 0; dx may be dy.
	ReLUBackward(y, dy, dx Buffer)
	// Add sets y = a + b; y may be a or b.
	Add(a, b, y Buffer)
	// GlobalAvgPool sets y[i][c] to the mean over the hw pixels of image i
	// (n x hw x c) of channel c.
	GlobalAvgPool(n, hw, c int, x, y Buffer)
	// GlobalAvgPoolBackward spreads dy[i][c] / hw over image i's pixels.
	GlobalAvgPoolBackward(n, hw, c int, dy, dx Buffer)
	// L2Normalize sets each row of y to the row of x divided by its norm,
	// saving the norms.
	L2Normalize(rows, cols int, x, y, norms Buffer)
	// L2NormalizeBackward sets dx = (dy - y (y . dy)) / norm, row by row.
	L2NormalizeBackward(rows, cols int, y, norms, dy, dx Buffer)
	// SoftmaxCrossEntropy returns the mean cross entropy of the rows of
	// logits against labels and sets dlogits to its gradient.
	SoftmaxCrossEntropy(rows, classes int, logits Buffer, labels []int, dlogits Buffer) float64
	// ContrastiveLoss evaluates a fused contrastive loss of z (n x d) and
	// sets grad to dL/dz when it is not nil.
	ContrastiveLoss(p Params, z Buffer, n, d int, labels []int, grad Buffer) (Result, error)
	// SGD takes one step of SGD with momentum and weight decay, as PyTorch
	// defines it: v = momentum v + (g + decay w); w = w - lr v.
	SGD(w, g, v Buffer, lr, momentum, decay float32)
	// SumSquares returns the sum of the squares of x, in float64.
	SumSquares(x Buffer) float64
}
