package kernels

import (
	"errors"
	"fmt"
	"math"
)

// ConvGeom describes a 2-D convolution of N images of H x W pixels with C
// channels by K filters of R x S taps, zero padding Pad and stride Stride.
// Images are channels-last (N x H x W x C) and filters R x S x C x K.
type ConvGeom struct {
	N, C, H, W  int
	K, R, S     int
	Stride, Pad int
}

// OutH is the output's height.
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

// InLen, OutLen and FilterLen are the sizes of the input, output and filters.
func (g ConvGeom) InLen() int { return g.N * g.H * g.W * g.C }

// OutLen is the size of the output, N x OutH x OutW x K.
func (g ConvGeom) OutLen() int { return g.N * g.OutH() * g.OutW() * g.K }

// FilterLen is the size of the filters, R x S x C x K.
func (g ConvGeom) FilterLen() int { return g.R * g.S * g.C * g.K }

// String names the geometry in errors.
func (g ConvGeom) String() string {
	return fmt.Sprintf("%dx%dx%dx%d * %dx%dx%dx%d /%d pad %d", g.N, g.H, g.W, g.C, g.R, g.S, g.C, g.K, g.Stride, g.Pad)
}

// ConvBackward is the input of Device.Conv2DBackward: the forward pass's
// geometry, input and filters, the output's gradient DY, and where the
// gradients go: DW (R x S x C x K) is accumulated into; DX (N x H x W x C)
// is overwritten, or skipped when nil (the first layer's input is data).
type ConvBackward struct {
	Geom     ConvGeom
	X, W, DY Buffer
	DX, DW   Buffer
}

// BatchNorm is the input of Device.BatchNormTrain and BatchNormEval: X is
// Rows x C (channels last: every pixel of every image is a row). Training
// normalises each channel by its batch mean and (biased) variance, saves the
// mean and 1/sqrt(var + Eps) in Mean and InvStd for the backward pass, and
// moves the running statistics as PyTorch does: run = (1 - Momentum) run +
// Momentum batch, with the unbiased variance. Evaluation normalises with
// RunMean and RunVar and ignores Mean and InvStd. Either way Y = Gamma xhat
// + Beta, then max(Y, 0) when ReLU is set.
type BatchNorm struct {
	Rows, C         int
	X, Gamma, Beta  Buffer
	Eps, Momentum   float32
	ReLU            bool
	RunMean, RunVar Buffer
	Mean, InvStd    Buffer
	Y               Buffer
}

// BatchNormGrad is the input of Device.BatchNormBackward: the forward
// pass's X, Gamma, saved Mean and InvStd, its output Y when it had a fused
// ReLU (nil otherwise: then DY counts only where Y > 0), the output's
// gradient DY; DX is set, DGamma and DBeta are accumulated into.
type BatchNormGrad struct {
	Rows, C       int
	X, Y, Gamma   Buffer
	Mean, InvStd  Buffer
	DY, DX        Buffer
	DGamma, DBeta Buffer
}

// ErrNonFinite is the failure of an operation that checks its inputs or
// result for NaN and Inf and finds one.
var ErrNonFinite = errors.New("not finite")

// OpError is a failed device operation: its name, its sizes and the cause.
type OpError struct {
	Op    string
	Sizes string
	Err   error
}

// Error names the operation, its sizes and the cause.
func (e *OpError) Error() string {
	if e.Sizes == "" {
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("%s (%s): %v", e.Op, e.Sizes, e.Err)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Faults keeps a backend's first failure since the last sync, for the
// methods that do not return errors.
type Faults struct{ err error }

// Add records err (when it is the first since the last Take) as the
// failure of op with the given sizes.
func (f *Faults) Add(op, sizes string, err error) {
	if err != nil && f.err == nil {
		f.err = &OpError{Op: op, Sizes: sizes, Err: err}
	}
}

// Failed reports whether a failure waits to be reported: the device then
// skips further work.
func (f *Faults) Failed() bool { return f.err != nil }

// Take returns the recorded failure and clears it.
func (f *Faults) Take() error {
	err := f.err
	f.err = nil
	return err
}

// need is one operand of an operation as CheckLens sees it: its name, its
// length and the length the operation needs.
type need struct {
	name  string
	got   int
	want  int
	opt   bool // may be nil
	isNil bool
}

// Need describes one operand of an operation for CheckLens: its name, the
// view, and the length the operation needs.
func Need(name string, v interface{ Len() int }, want int) need {
	return need{name: name, got: v.Len(), want: want}
}

// Optional is Need for an operand that may be nil.
func Optional(name string, b Buffer, want int) need {
	return need{name: name, got: b.Len(), want: want, opt: true, isNil: b.IsNil()}
}

// Sizes names an operation's sizes for an error, computed only when one is
// reported.
type Sizes func() string

// String calls s.
func (s Sizes) String() string {
	if s == nil {
		return ""
	}
	return s()
}

// Values names a count of values.
func Values(n int) Sizes { return func() string { return fmt.Sprintf("%d values", n) } }

// RowsCols names a matrix's sizes.
func RowsCols(rows, cols int) Sizes {
	return func() string { return fmt.Sprintf("%d x %d", rows, cols) }
}

// SameLens reports the first buffer that does not hold n values; names
// names them in order.
func SameLens(n int, names []string, bufs ...Buffer) error {
	for i, b := range bufs {
		if err := CheckLens(Need(names[i], b, n)); err != nil {
			return err
		}
	}
	return nil
}

// CheckLens reports the first operand whose length is not what its
// operation needs, and a non-positive size.
func CheckLens(ops ...need) error {
	for _, o := range ops {
		if o.opt && o.isNil {
			continue
		}
		if o.want < 0 {
			return fmt.Errorf("%s: negative size %d", o.name, o.want)
		}
		if o.got != o.want {
			return fmt.Errorf("%s holds %d values, want %d", o.name, o.got, o.want)
		}
	}
	return nil
}

// CheckGemm validates the operands of Gemm: sizes, leading dimensions and
// buffer lengths (each buffer must reach its last element).
func CheckGemm(transA, transB bool, m, n, k int, a Buffer, lda int, b Buffer, ldb int, c Buffer, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("negative size")
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	for _, o := range []struct {
		name       string
		buf        Buffer
		rows, cols int
		ld         int
	}{{"A", a, ar, ac, lda}, {"B", b, br, bc, ldb}, {"C", c, m, n, ldc}} {
		if o.rows == 0 || o.cols == 0 {
			continue
		}
		if o.ld < o.cols {
			return fmt.Errorf("%s: leading dimension %d < %d columns", o.name, o.ld, o.cols)
		}
		if need := (o.rows-1)*o.ld + o.cols; o.buf.Len() < need {
			return fmt.Errorf("%s holds %d values, a %d x %d matrix with leading dimension %d needs %d",
				o.name, o.buf.Len(), o.rows, o.cols, o.ld, need)
		}
	}
	return nil
}

// GemmSizes names a product's sizes in errors.
func GemmSizes(transA, transB bool, m, n, k int) string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s m=%d n=%d k=%d", t(transA), t(transB), m, n, k)
}

// Check validates a batch norm's operands for training (train) or
// evaluation.
func (a BatchNorm) Check(train bool) error {
	if a.Rows < 1 || a.C < 1 {
		return fmt.Errorf("rows %d, channels %d", a.Rows, a.C)
	}
	if !(a.Eps > 0) || math.IsInf(float64(a.Eps), 0) || a.Momentum < 0 || a.Momentum > 1 {
		return fmt.Errorf("eps %v, momentum %v", a.Eps, a.Momentum)
	}
	n := a.Rows * a.C
	ops := []need{Need("x", a.X, n), Need("y", a.Y, n), Need("gamma", a.Gamma, a.C), Need("beta", a.Beta, a.C),
		Need("running mean", a.RunMean, a.C), Need("running variance", a.RunVar, a.C)}
	if train {
		ops = append(ops, Need("mean", a.Mean, a.C), Need("inverse std", a.InvStd, a.C))
	}
	return CheckLens(ops...)
}

// Sizes names a batch norm's sizes in errors.
func (a BatchNorm) Sizes() string { return fmt.Sprintf("%d rows x %d channels", a.Rows, a.C) }

// Check validates a batch norm backward pass's operands.
func (a BatchNormGrad) Check() error {
	if a.Rows < 1 || a.C < 1 {
		return fmt.Errorf("rows %d, channels %d", a.Rows, a.C)
	}
	n := a.Rows * a.C
	return CheckLens(Need("x", a.X, n), Optional("y", a.Y, n), Need("gamma", a.Gamma, a.C),
		Need("mean", a.Mean, a.C), Need("inverse std", a.InvStd, a.C), Need("dy", a.DY, n), Need("dx", a.DX, n),
		Need("dgamma", a.DGamma, a.C), Need("dbeta", a.DBeta, a.C))
}

// Sizes names a batch norm's sizes in errors.
func (a BatchNormGrad) Sizes() string { return fmt.Sprintf("%d rows x %d channels", a.Rows, a.C) }

// Check validates a convolution's forward operands.
func (g ConvGeom) Check(x, w, y Buffer) error {
	if err := g.Validate(); err != nil {
		return err
	}
	return CheckLens(Need("x", x, g.InLen()), Need("w", w, g.FilterLen()), Need("y", y, g.OutLen()))
}

// Check validates a convolution's backward operands.
func (a ConvBackward) Check() error {
	g := a.Geom
	if err := g.Validate(); err != nil {
		return err
	}
	return CheckLens(Need("x", a.X, g.InLen()), Need("w", a.W, g.FilterLen()), Need("dy", a.DY, g.OutLen()),
		Optional("dx", a.DX, g.InLen()), Need("dw", a.DW, g.FilterLen()))
}
