// Package encoder defines the networks sincere trains: layers with explicit
// forward and backward passes written only against the kernels.Device API
// (so one definition runs on every device), the mlp, cnn and CIFAR ResNet
// encoders, the projection head and the linear classifier, the arenas that
// hold their parameters, gradients, momentum and activations, and their
// snapshots.
package encoder

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// Tensor is a device buffer with its shape: [N, H, W, C] for images
// (channels last), [N, F] for vectors.
type Tensor struct {
	Buf   kernels.Buffer
	Shape []int
}

// N is the batch size.
func (t Tensor) N() int { return t.Shape[0] }

// PerRow is the number of values per batch row.
func (t Tensor) PerRow() int { return prod(t.Shape[1:]) }

// prod multiplies sizes.
func prod(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// withRows returns shape with its batch size replaced by n.
func withRows(n int, perRow []int) []int { return append([]int{n}, perRow...) }

// Param is a trainable array with its gradient and its momentum, each a view
// of its arena (the three arenas share one layout).
type Param struct {
	// Name is the parameter's path in the network, e.g. "encoder.3.conv1.w".
	Name string
	// Shape is the array's shape.
	Shape []int
	// W, G, V hold the values, the gradient and the optimiser's momentum.
	W, G, V kernels.Buffer
	// fanIn is the inputs per output, for Kaiming initialisation; 0 means
	// a constant init.
	fanIn int
	// fill is the constant value of a non-Kaiming parameter.
	fill float32
}

// Len is the number of values.
func (p *Param) Len() int { return prod(p.Shape) }

// State is a non-trainable array saved with the weights: batch norm's
// running statistics.
type State struct {
	Name string
	Buf  kernels.Buffer
	n    int
	fill float32
}

// Len is the number of values.
func (s *State) Len() int { return s.n }

// Layer is a piece of network with explicit passes. Forward keeps what
// Backward needs (its input and output stay valid until the next Forward);
// Backward adds the parameter gradients to their G and returns dL/dx. A
// layer's outputs live in buffers reserved once (Model.Prepare) for a
// largest batch; a smaller batch uses their first rows.
type Layer interface {
	Forward(x Tensor, train bool) Tensor
	Backward(dy Tensor) Tensor
	Params() []*Param
	States() []*State
	// reserve takes the layer's buffers for inputs of per-row shape in and
	// returns the output's per-row shape.
	reserve(r *reserver, in []int) ([]int, error)
	// assignGrad picks, in backward order, the gradient slot the layer
	// writes dL/dx into, given the slot dy arrives in (-1: a buffer of the
	// caller's), and returns it (-1 when the layer computes no dL/dx).
	assignGrad(s *gradSlots, dy int) int
}

// reserver hands out a model's activation buffers for batches of up to
// rows rows: first counting (arena nil), then taking them from the arena
// in the same order.
type reserver struct {
	rows  int
	train bool // reserve the backward pass's buffers too
	arena *kernels.Arena
	bytes []int
	err   error
	// gradPerRow is the largest input gradient of a layer, per row: the
	// size of every gradient slot.
	gradPerRow int
}

// take returns a buffer of n values (none while counting).
func (r *reserver) take(n int) kernels.Buffer {
	if r.arena == nil {
		r.bytes = append(r.bytes, kernels.FloatBytes(n))
		return kernels.Buffer{}
	}
	b, err := r.arena.Take(n)
	if err != nil && r.err == nil {
		r.err = err
	}
	return b
}

// gradSize records that a layer's input gradient has perRow values a row.
func (r *reserver) gradSize(perRow int) { r.gradPerRow = max(r.gradPerRow, perRow) }

// gradSlots are the buffers the backward pass writes input gradients into,
// shared by every layer: each gradient is read by the layer before it and
// then dead, so a few slots of the largest gradient's size serve a whole
// network (a chain alternates two; a residual block holds one more while
// both its paths read its output's gradient). Prepare assigns the slots
// once, in backward order (Layer.assignGrad), then allocates them.
type gradSlots struct {
	bufs   []kernels.Buffer
	used   []bool
	pinned []bool
}

// get returns a free slot other than avoid and marks it used.
func (s *gradSlots) get(avoid int) int {
	for i, u := range s.used {
		if !u && i != avoid {
			s.used[i] = true
			return i
		}
	}
	s.used = append(s.used, true)
	s.pinned = append(s.pinned, false)
	return len(s.used) - 1
}

// release frees slot i (-1: none) unless it is pinned.
func (s *gradSlots) release(i int) {
	if i >= 0 && !s.pinned[i] {
		s.used[i] = false
	}
}

// gradOut is a layer's place in the gradient slots.
type gradOut struct {
	slots *gradSlots
	slot  int
}

// assign takes a new slot for the layer's dL/dx and frees dy's: the usual
// case, a layer that reads dy and writes dx elsewhere.
func (g *gradOut) assign(s *gradSlots, dy int) int {
	g.slots, g.slot = s, s.get(dy)
	s.release(dy)
	return g.slot
}

// buf returns the first n rows of perRow values of the layer's slot.
func (g *gradOut) buf(what string, n, perRow int) kernels.Buffer {
	if g.slots == nil || g.slot < 0 || g.slot >= len(g.slots.bufs) {
		panic(fmt.Sprintf("encoder: %s has no gradient buffer: call Model.Prepare with train first", what))
	}
	b := g.slots.bufs[g.slot]
	fits(what, b, n, perRow)
	return rowsOf(b, n, perRow)
}

// base holds a layer's device.
type base struct {
	dev kernels.Device
}

func (b *base) States() []*State { return nil }

// rowsOf returns the first n rows of a buffer of perRow values a row.
func rowsOf(buf kernels.Buffer, n, perRow int) kernels.Buffer { return buf.Sub(0, n*perRow) }

// fits panics when a batch of n rows exceeds the reserved rows: the model
// must be prepared for the largest batch first (a programming error).
func fits(what string, buf kernels.Buffer, n, perRow int) {
	if buf.IsNil() {
		panic(fmt.Sprintf("encoder: %s has no buffers: call Model.Prepare first (with train for a backward pass)", what))
	}
	if n*perRow > buf.Len() {
		panic(fmt.Sprintf("encoder: %s: batch of %d rows, prepared for %d", what, n, buf.Len()/perRow))
	}
}

func newParam(name string, fanIn int, fill float32, shape ...int) *Param {
	return &Param{Name: name, Shape: shape, fanIn: fanIn, fill: fill}
}

// Conv2D is a bias-free convolution with Out filters of R x R taps over In
// channels, with stride and zero padding; its filters are R x R x In x Out.
type Conv2D struct {
	base
	In, Out, R, Stride, Pad int
	W                       *Param
	// NoInputGrad skips dL/dx: the first layer's input is the data.
	NoInputGrad bool
	x           Tensor
	g           kernels.ConvGeom
	y           kernels.Buffer
	dx          gradOut
	in, out     []int // per-row shapes
}

// NewConv2D returns a convolution layer.
func NewConv2D(dev kernels.Device, name string, in, out, r, stride, pad int) *Conv2D {
	return &Conv2D{base: base{dev: dev}, In: in, Out: out, R: r, Stride: stride, Pad: pad,
		W: newParam(name+".w", in*r*r, 0, r, r, in, out)}
}

func (l *Conv2D) reserve(r *reserver, in []int) ([]int, error) {
	if len(in) != 3 || in[2] != l.In {
		return nil, fmt.Errorf("%s expects images of %d channels, got %v", l.W.Name, l.In, in)
	}
	g := kernels.ConvGeom{N: 1, H: in[0], W: in[1], C: in[2], K: l.Out, R: l.R, S: l.R, Stride: l.Stride, Pad: l.Pad}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", l.W.Name, err)
	}
	l.in, l.out = in, []int{g.OutH(), g.OutW(), l.Out}
	l.y = r.take(r.rows * prod(l.out))
	if !l.NoInputGrad {
		r.gradSize(prod(in))
	}
	return l.out, nil
}

func (l *Conv2D) assignGrad(s *gradSlots, dy int) int {
	if l.NoInputGrad {
		s.release(dy)
		return -1
	}
	return l.dx.assign(s, dy)
}

// Forward convolves x.
func (l *Conv2D) Forward(x Tensor, train bool) Tensor {
	l.x = x
	n := x.N()
	l.g = kernels.ConvGeom{N: n, H: x.Shape[1], W: x.Shape[2], C: x.Shape[3], K: l.Out, R: l.R, S: l.R, Stride: l.Stride, Pad: l.Pad}
	fits(l.W.Name, l.y, n, prod(l.out))
	y := rowsOf(l.y, n, prod(l.out))
	l.dev.Conv2D(l.g, x.Buf, l.W.W, y)
	return Tensor{y, withRows(n, l.out)}
}

// Backward accumulates dW and returns dx (an empty tensor with NoInputGrad).
func (l *Conv2D) Backward(dy Tensor) Tensor {
	a := kernels.ConvBackward{Geom: l.g, X: l.x.Buf, W: l.W.W, DY: dy.Buf, DW: l.W.G}
	if l.NoInputGrad {
		l.dev.Conv2DBackward(a)
		return Tensor{}
	}
	a.DX = l.dx.buf(l.W.Name+" backward", l.g.N, prod(l.in))
	l.dev.Conv2DBackward(a)
	return Tensor{a.DX, l.x.Shape}
}

// Params returns the filters.
func (l *Conv2D) Params() []*Param { return []*Param{l.W} }

// BatchNorm normalises each channel (the last dimension, of [N, H, W, C]
// or [N, F]) with batch statistics in training and running statistics in
// evaluation, as PyTorch's BatchNorm2d/1d with momentum 0.1 and eps 1e-5;
// with ReLU it is followed by max(x, 0), fused into the same passes.
type BatchNorm struct {
	base
	C               int
	ReLU            bool
	Gamma, Beta     *Param
	RunMean, RunVar *State
	x, y            Tensor
	mean, invStd    kernels.Buffer
	yBuf            kernels.Buffer
	dx              gradOut
	perRow          []int
	trained         bool
}

// BatchNorm's constants, PyTorch's defaults.
const (
	bnEps      = 1e-5
	bnMomentum = 0.1
)

// NewBatchNormReLU returns a batch norm layer over c channels followed by a
// ReLU.
func NewBatchNormReLU(dev kernels.Device, name string, c int) *BatchNorm {
	l := NewBatchNorm(dev, name, c)
	l.ReLU = true
	return l
}

// NewBatchNorm returns a batch norm layer over c channels.
func NewBatchNorm(dev kernels.Device, name string, c int) *BatchNorm {
	return &BatchNorm{base: base{dev: dev}, C: c,
		Gamma: newParam(name+".gamma", 0, 1, c), Beta: newParam(name+".beta", 0, 0, c),
		RunMean: &State{Name: name + ".running_mean", n: c},
		RunVar:  &State{Name: name + ".running_var", n: c, fill: 1}}
}

func (l *BatchNorm) reserve(r *reserver, in []int) ([]int, error) {
	if len(in) == 0 || in[len(in)-1] != l.C {
		return nil, fmt.Errorf("%s expects %d channels, got %v", l.Gamma.Name, l.C, in)
	}
	l.perRow = in
	n := r.rows * prod(in)
	l.yBuf = r.take(n)
	l.mean, l.invStd = r.take(l.C), r.take(l.C)
	r.gradSize(prod(in))
	return in, nil
}

func (l *BatchNorm) assignGrad(s *gradSlots, dy int) int { return l.dx.assign(s, dy) }

// Forward normalises x.
func (l *BatchNorm) Forward(x Tensor, train bool) Tensor {
	l.x = x
	n, per := x.N(), x.PerRow()
	fits(l.Gamma.Name, l.yBuf, n, per)
	y := rowsOf(l.yBuf, n, per)
	a := kernels.BatchNorm{Rows: n * per / l.C, C: l.C, X: x.Buf, Gamma: l.Gamma.W, Beta: l.Beta.W, Eps: bnEps, Momentum: bnMomentum,
		ReLU: l.ReLU, RunMean: l.RunMean.Buf, RunVar: l.RunVar.Buf, Mean: l.mean, InvStd: l.invStd, Y: y}
	if train {
		l.dev.BatchNormTrain(a)
	} else {
		l.dev.BatchNormEval(a)
	}
	l.trained = train
	l.y = Tensor{y, x.Shape}
	return l.y
}

// Backward is the training-mode gradient.
func (l *BatchNorm) Backward(dy Tensor) Tensor {
	if !l.trained {
		panic("encoder: batch norm backward after an evaluation-mode forward")
	}
	n, per := l.x.N(), l.x.PerRow()
	dx := l.dx.buf(l.Gamma.Name+" backward", n, per)
	a := kernels.BatchNormGrad{Rows: n * per / l.C, C: l.C, X: l.x.Buf, Gamma: l.Gamma.W, Mean: l.mean, InvStd: l.invStd,
		DY: dy.Buf, DX: dx, DGamma: l.Gamma.G, DBeta: l.Beta.G}
	if l.ReLU {
		a.Y = l.y.Buf
	}
	l.dev.BatchNormBackward(a)
	return Tensor{dx, l.x.Shape}
}

// Params returns gamma and beta.
func (l *BatchNorm) Params() []*Param { return []*Param{l.Gamma, l.Beta} }

// States returns the running mean and variance.
func (l *BatchNorm) States() []*State { return []*State{l.RunMean, l.RunVar} }

// ReLU is max(x, 0). Its backward pass works in place (dL/dx overwrites
// dy), and so does its forward pass when inPlace is set (the residual
// blocks' output: nothing else reads the sum it overwrites).
type ReLU struct {
	base
	y         Tensor
	yBuf      kernels.Buffer
	perRowLen int
	inPlace   bool
}

// NewReLU returns a ReLU layer.
func NewReLU(dev kernels.Device) *ReLU { return &ReLU{base: base{dev: dev}} }

func (l *ReLU) reserve(r *reserver, in []int) ([]int, error) {
	l.perRowLen = prod(in)
	if !l.inPlace {
		l.yBuf = r.take(r.rows * l.perRowLen)
	}
	return in, nil
}

// assignGrad keeps dy's slot: the backward pass is in place.
func (l *ReLU) assignGrad(_ *gradSlots, dy int) int { return dy }

// Forward clamps x at 0.
func (l *ReLU) Forward(x Tensor, train bool) Tensor {
	if l.inPlace {
		l.dev.ReLU(x.Buf, x.Buf)
		l.y = x
		return x
	}
	fits("relu", l.yBuf, x.N(), x.PerRow())
	y := rowsOf(l.yBuf, x.N(), x.PerRow())
	l.dev.ReLU(x.Buf, y)
	l.y = Tensor{y, x.Shape}
	return l.y
}

// Backward masks dy in place.
func (l *ReLU) Backward(dy Tensor) Tensor {
	l.dev.ReLUBackward(l.y.Buf, dy.Buf, dy.Buf)
	return dy
}

// Params returns nothing.
func (l *ReLU) Params() []*Param { return nil }

// Linear is y = x W^T + b on [N, In] (images are flattened, channels last).
type Linear struct {
	base
	In, Out int
	W, B    *Param
	// NoInputGrad skips dL/dx: the first layer's input is the data.
	NoInputGrad bool
	x           Tensor
	y           kernels.Buffer
	dx          gradOut
}

// NewLinear returns a fully connected layer, with a bias when bias is true.
func NewLinear(dev kernels.Device, name string, in, out int, bias bool) *Linear {
	l := &Linear{base: base{dev: dev}, In: in, Out: out, W: newParam(name+".w", in, 0, out, in)}
	if bias {
		l.B = newParam(name+".b", 0, 0, out)
	}
	return l
}

func (l *Linear) reserve(r *reserver, in []int) ([]int, error) {
	if prod(in) != l.In {
		return nil, fmt.Errorf("%s expects %d inputs, got %v", l.W.Name, l.In, in)
	}
	l.y = r.take(r.rows * l.Out)
	if !l.NoInputGrad {
		r.gradSize(l.In)
	}
	return []int{l.Out}, nil
}

func (l *Linear) assignGrad(s *gradSlots, dy int) int {
	if l.NoInputGrad {
		s.release(dy)
		return -1
	}
	return l.dx.assign(s, dy)
}

// Forward applies the layer to the rows of x (flattening images).
func (l *Linear) Forward(x Tensor, train bool) Tensor {
	l.x = x
	n := x.N()
	fits(l.W.Name, l.y, n, l.Out)
	y := rowsOf(l.y, n, l.Out)
	l.dev.Gemm(false, true, n, l.Out, l.In, 1, x.Buf, l.In, l.W.W, l.In, 0, y, l.Out)
	if l.B != nil {
		l.dev.AddBias(y, n, l.Out, l.B.W)
	}
	return Tensor{y, []int{n, l.Out}}
}

// Backward accumulates dW = dy^T x and db, and returns dx = dy W.
func (l *Linear) Backward(dy Tensor) Tensor {
	n := dy.N()
	l.dev.Gemm(true, false, l.Out, l.In, n, 1, dy.Buf, l.Out, l.x.Buf, l.In, 1, l.W.G, l.In)
	if l.B != nil {
		l.dev.SumRows(dy.Buf, n, l.Out, l.B.G)
	}
	if l.NoInputGrad {
		return Tensor{}
	}
	dx := l.dx.buf(l.W.Name+" backward", n, l.In)
	l.dev.Gemm(false, false, n, l.In, l.Out, 1, dy.Buf, l.Out, l.W.W, l.In, 0, dx, l.In)
	return Tensor{dx, l.x.Shape}
}

// Params returns the weights and the bias.
func (l *Linear) Params() []*Param {
	if l.B == nil {
		return []*Param{l.W}
	}
	return []*Param{l.W, l.B}
}

// GlobalAvgPool averages each channel: [N, H, W, C] to [N, C].
type GlobalAvgPool struct {
	base
	shape []int
	y     kernels.Buffer
	dx    gradOut
	in    []int
}

// NewGlobalAvgPool returns a global average pooling layer.
func NewGlobalAvgPool(dev kernels.Device) *GlobalAvgPool { return &GlobalAvgPool{base: base{dev: dev}} }

func (l *GlobalAvgPool) reserve(r *reserver, in []int) ([]int, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("global average pooling expects images, got %v", in)
	}
	l.in = in
	l.y = r.take(r.rows * in[2])
	r.gradSize(prod(in))
	return []int{in[2]}, nil
}

func (l *GlobalAvgPool) assignGrad(s *gradSlots, dy int) int { return l.dx.assign(s, dy) }

// Forward averages the planes.
func (l *GlobalAvgPool) Forward(x Tensor, train bool) Tensor {
	l.shape = x.Shape
	n, hw, c := x.Shape[0], x.Shape[1]*x.Shape[2], x.Shape[3]
	fits("avgpool", l.y, n, c)
	y := rowsOf(l.y, n, c)
	l.dev.GlobalAvgPool(n, hw, c, x.Buf, y)
	return Tensor{y, []int{n, c}}
}

// Backward spreads dy over the planes.
func (l *GlobalAvgPool) Backward(dy Tensor) Tensor {
	n, hw, c := l.shape[0], l.shape[1]*l.shape[2], l.shape[3]
	dx := l.dx.buf("avgpool backward", n, hw*c)
	l.dev.GlobalAvgPoolBackward(n, hw, c, dy.Buf, dx)
	return Tensor{dx, l.shape}
}

// Params returns nothing.
func (l *GlobalAvgPool) Params() []*Param { return nil }

// L2Norm divides each row by its Euclidean norm.
type L2Norm struct {
	base
	y            Tensor
	yBuf         kernels.Buffer
	dx           gradOut
	norms, normB kernels.Buffer
}

// NewL2Norm returns an L2 normalisation layer.
func NewL2Norm(dev kernels.Device) *L2Norm { return &L2Norm{base: base{dev: dev}} }

func (l *L2Norm) reserve(r *reserver, in []int) ([]int, error) {
	f := prod(in)
	l.yBuf = r.take(r.rows * f)
	l.normB = r.take(r.rows)
	r.gradSize(f)
	return []int{f}, nil
}

func (l *L2Norm) assignGrad(s *gradSlots, dy int) int { return l.dx.assign(s, dy) }

// Forward normalises the rows.
func (l *L2Norm) Forward(x Tensor, train bool) Tensor {
	n, f := x.N(), x.PerRow()
	fits("l2norm", l.yBuf, n, f)
	y := rowsOf(l.yBuf, n, f)
	l.norms = rowsOf(l.normB, n, 1)
	l.dev.L2Normalize(n, f, x.Buf, y, l.norms)
	l.y = Tensor{y, []int{n, f}}
	return l.y
}

// Backward projects dy onto the sphere's tangent space.
func (l *L2Norm) Backward(dy Tensor) Tensor {
	n, f := l.y.Shape[0], l.y.Shape[1]
	dx := l.dx.buf("l2norm backward", n, f)
	l.dev.L2NormalizeBackward(n, f, l.y.Buf, l.norms, dy.Buf, dx)
	return Tensor{dx, l.y.Shape}
}

// Params returns nothing.
func (l *L2Norm) Params() []*Param { return nil }

// Sequential runs layers one after another.
type Sequential struct {
	Layers []Layer
	prof   kernels.Timer
}

func (s *Sequential) reserve(r *reserver, in []int) ([]int, error) {
	var err error
	for _, l := range s.Layers {
		if in, err = l.reserve(r, in); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// assignGrad runs the layers' assignments in backward order.
func (s *Sequential) assignGrad(g *gradSlots, dy int) int {
	for i := len(s.Layers) - 1; i >= 0; i-- {
		dy = s.Layers[i].assignGrad(g, dy)
	}
	return dy
}

// leaf reports whether a layer is timed as itself in a profile.
func leaf(l Layer) bool {
	switch l.(type) {
	case *Sequential, *BasicBlock, *Bottleneck:
		return false
	}
	return true
}

// Forward runs every layer.
func (s *Sequential) Forward(x Tensor, train bool) Tensor {
	for _, l := range s.Layers {
		x = l.Forward(x, train)
		if s.prof != nil && leaf(l) {
			s.prof.Mark(kind(l) + " forward")
		}
	}
	return x
}

// Backward runs every layer's backward pass in reverse order.
func (s *Sequential) Backward(dy Tensor) Tensor {
	for i := len(s.Layers) - 1; i >= 0; i-- {
		l := s.Layers[i]
		dy = l.Backward(dy)
		if s.prof != nil && leaf(l) {
			s.prof.Mark(kind(l) + " backward")
		}
	}
	return dy
}

// Params returns every layer's parameters in order.
func (s *Sequential) Params() []*Param {
	var out []*Param
	for _, l := range s.Layers {
		out = append(out, l.Params()...)
	}
	return out
}

// States returns every layer's states in order.
func (s *Sequential) States() []*State {
	var out []*State
	for _, l := range s.Layers {
		out = append(out, l.States()...)
	}
	return out
}

// residual is what ResNet's blocks share: relu(main(x) + shortcut(x)),
// the shortcut a projection (1x1 convolution and batch norm) when the
// stride or the width changes, else the identity. The sum and the ReLU
// overwrite the main path's output, as PyTorch's blocks do: its last layer
// is a batch norm without a ReLU, whose backward pass does not read it.
type residual struct {
	base
	Main     *Sequential
	Shortcut *Sequential // nil for the identity
	out      *ReLU
	in       []int
	prof     kernels.Timer
}

func (b *residual) reserve(r *reserver, in []int) ([]int, error) {
	b.in = in
	out, err := b.Main.reserve(r, in)
	if err != nil {
		return nil, err
	}
	if b.Shortcut != nil {
		s, err := b.Shortcut.reserve(r, in)
		if err != nil {
			return nil, err
		}
		if prod(s) != prod(out) {
			return nil, fmt.Errorf("residual block: paths give %v and %v", out, s)
		}
	} else if prod(in) != prod(out) {
		return nil, fmt.Errorf("residual block: identity shortcut from %v to %v", in, out)
	}
	r.gradSize(prod(in))
	b.out.inPlace = true
	return b.out.reserve(r, out)
}

// assignGrad: the output's gradient d (the ReLU's, in dy's slot) is read by
// both paths, so it is pinned while they are assigned; the block's dL/dx
// is the main path's, to which the shortcut's is added in place.
func (b *residual) assignGrad(s *gradSlots, dy int) int {
	d := b.out.assignGrad(s, dy) // -1: the caller's buffer, which the paths read in place
	if d >= 0 {
		s.pinned[d] = true
	}
	dm := b.Main.assignGrad(s, d)
	ds := d
	if b.Shortcut != nil {
		ds = b.Shortcut.assignGrad(s, d)
	}
	if d >= 0 {
		s.pinned[d] = false
		s.release(d)
	}
	if ds != d {
		s.release(ds)
	}
	return dm
}

// Forward adds the two paths and applies the ReLU.
func (b *residual) Forward(x Tensor, train bool) Tensor {
	m := b.Main.Forward(x, train)
	s := x
	if b.Shortcut != nil {
		s = b.Shortcut.Forward(x, train)
	}
	b.dev.Add(m.Buf, s.Buf, m.Buf)
	y := b.out.Forward(m, train)
	if b.prof != nil {
		b.prof.Mark("residual add+relu forward")
	}
	return y
}

// Backward sends the gradient down both paths and adds their input
// gradients.
func (b *residual) Backward(dy Tensor) Tensor {
	d := b.out.Backward(dy)
	if b.prof != nil {
		b.prof.Mark("residual add+relu backward")
	}
	dm := b.Main.Backward(d)
	ds := d
	if b.Shortcut != nil {
		ds = b.Shortcut.Backward(d)
	}
	b.dev.Add(dm.Buf, ds.Buf, dm.Buf)
	if b.prof != nil {
		b.prof.Mark("residual add+relu backward")
	}
	return dm
}

// Params returns the parameters of both paths.
func (b *residual) Params() []*Param {
	p := b.Main.Params()
	if b.Shortcut != nil {
		p = append(p, b.Shortcut.Params()...)
	}
	return p
}

// States returns the batch norm statistics of both paths.
func (b *residual) States() []*State {
	s := b.Main.States()
	if b.Shortcut != nil {
		s = append(s, b.Shortcut.States()...)
	}
	return s
}

// setProfile makes the block's layers mark the timer t (nil: stop).
func (b *residual) setProfile(t kernels.Timer) {
	b.prof = t
	b.Main.setProfile(t)
	if b.Shortcut != nil {
		b.Shortcut.setProfile(t)
	}
}

// projection returns the shortcut of a block that changes the stride or the
// width, else nil.
func projection(dev kernels.Device, name string, in, out, stride int) *Sequential {
	if stride == 1 && in == out {
		return nil
	}
	return &Sequential{Layers: []Layer{NewConv2D(dev, name+".shortcut.conv", in, out, 1, stride, 0), NewBatchNorm(dev, name+".shortcut.bn", out)}}
}

// BasicBlock is ResNet-18's residual block: relu(bn2(conv2(relu(bn1(conv1
// x)))) + shortcut(x)).
type BasicBlock struct{ residual }

// NewBasicBlock returns a residual block from in to out channels.
func NewBasicBlock(dev kernels.Device, name string, in, out, stride int) *BasicBlock {
	return &BasicBlock{residual{base: base{dev: dev}, out: NewReLU(dev), Main: &Sequential{Layers: []Layer{
		NewConv2D(dev, name+".conv1", in, out, 3, stride, 1), NewBatchNormReLU(dev, name+".bn1", out),
		NewConv2D(dev, name+".conv2", out, out, 3, 1, 1), NewBatchNorm(dev, name+".bn2", out),
	}}, Shortcut: projection(dev, name, in, out, stride)}}
}

// Bottleneck is ResNet-50's residual block: a 1x1 convolution down to
// planes channels, a 3x3 convolution (carrying the stride), a 1x1
// convolution up to 4 x planes, each with batch norm, and the shortcut:
// relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1 x)))))) + shortcut(x)).
type Bottleneck struct{ residual }

// bottleneckExpansion is the ratio of a bottleneck block's output width to
// its inner width.
const bottleneckExpansion = 4

// NewBottleneck returns a bottleneck block from in channels through planes
// to 4 x planes.
func NewBottleneck(dev kernels.Device, name string, in, planes, stride int) *Bottleneck {
	out := bottleneckExpansion * planes
	return &Bottleneck{residual{base: base{dev: dev}, out: NewReLU(dev), Main: &Sequential{Layers: []Layer{
		NewConv2D(dev, name+".conv1", in, planes, 1, 1, 0), NewBatchNormReLU(dev, name+".bn1", planes),
		NewConv2D(dev, name+".conv2", planes, planes, 3, stride, 1), NewBatchNormReLU(dev, name+".bn2", planes),
		NewConv2D(dev, name+".conv3", planes, out, 1, 1, 0), NewBatchNorm(dev, name+".bn3", out),
	}}, Shortcut: projection(dev, name, in, out, stride)}}
}

// initValues returns the initial values of parameters, laid out as their
// arena: Kaiming normal (std sqrt(2 / fan in)) for weights, constants for
// biases and batch norm; each parameter draws from its own stream, keyed by
// its name and seed.
func initValues(params []*Param, size int, seed uint64) []float32 {
	out := make([]float32, size)
	for _, p := range params {
		_, off := p.W.Mem()
		v := out[off : off+p.Len()]
		if p.fanIn > 0 {
			rng := rand.New(rand.NewPCG(seed, nameHash(p.Name)))
			std := math.Sqrt(2 / float64(p.fanIn))
			for i := range v {
				v[i] = float32(rng.NormFloat64() * std)
			}
		} else {
			for i := range v {
				v[i] = p.fill
			}
		}
	}
	return out
}

// nameHash is FNV-1a of a parameter name.
func nameHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
