// Package encoder defines the networks sincere trains: layers with explicit
// forward and backward passes written only against the kernels.Device API
// (so one definition runs on every device), the mlp, cnn and CIFAR
// ResNet-18 encoders, the projection head and the linear classifier, and
// their parameters and checkpoints.
package encoder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

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
func (t Tensor) PerRow() int {
	s := 1
	for _, d := range t.Shape[1:] {
		s *= d
	}
	return s
}

// Param is a trainable array with its gradient and its momentum buffer.
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
func (p *Param) Len() int { return p.W.Len() }

// State is a non-trainable array saved with the weights: batch norm's
// running statistics.
type State struct {
	Name string
	Buf  kernels.Buffer
	fill float32
}

// Layer is a piece of network with explicit passes. Forward keeps what
// Backward needs (its input and output stay valid until the next Forward);
// Backward adds the parameter gradients to their G and returns dL/dx.
type Layer interface {
	Forward(x Tensor, train bool) Tensor
	Backward(dy Tensor) Tensor
	Params() []*Param
	States() []*State
}

// base holds the device and a layer's output buffers, reallocated only when
// the batch size changes.
type base struct {
	dev kernels.Device
	buf map[string]kernels.Buffer
}

func (b *base) scratch(name string, n int) kernels.Buffer {
	if b.buf == nil {
		b.buf = map[string]kernels.Buffer{}
	}
	if buf, ok := b.buf[name]; ok && buf.Len() == n {
		return buf
	}
	buf := b.dev.Alloc(n)
	b.buf[name] = buf
	return buf
}

func (b *base) States() []*State { return nil }

func newParam(dev kernels.Device, name string, fanIn int, fill float32, shape ...int) *Param {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return &Param{Name: name, Shape: shape, W: dev.Alloc(n), G: dev.Alloc(n), V: dev.Alloc(n), fanIn: fanIn, fill: fill}
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
}

// NewConv2D returns a convolution layer.
func NewConv2D(dev kernels.Device, name string, in, out, r, stride, pad int) *Conv2D {
	return &Conv2D{base: base{dev: dev}, In: in, Out: out, R: r, Stride: stride, Pad: pad,
		W: newParam(dev, name+".w", in*r*r, 0, r, r, in, out)}
}

// Forward convolves x.
func (l *Conv2D) Forward(x Tensor, train bool) Tensor {
	l.x = x
	l.g = kernels.ConvGeom{N: x.Shape[0], H: x.Shape[1], W: x.Shape[2], C: x.Shape[3], K: l.Out, R: l.R, S: l.R, Stride: l.Stride, Pad: l.Pad}
	if l.g.C != l.In {
		panic(fmt.Sprintf("encoder: %s expects %d channels, got %d", l.W.Name, l.In, l.g.C))
	}
	shape := []int{l.g.N, l.g.OutH(), l.g.OutW(), l.Out}
	y := l.scratch("y", shape[0]*shape[1]*shape[2]*shape[3])
	l.dev.Conv2D(l.g, x.Buf, l.W.W, y)
	return Tensor{y, shape}
}

// Backward accumulates dW and returns dx (an empty tensor with NoInputGrad).
func (l *Conv2D) Backward(dy Tensor) Tensor {
	if l.NoInputGrad {
		l.dev.Conv2DBackward(l.g, l.x.Buf, l.W.W, dy.Buf, nil, l.W.G)
		return Tensor{}
	}
	dx := l.scratch("dx", l.x.Buf.Len())
	l.dev.Conv2DBackward(l.g, l.x.Buf, l.W.W, dy.Buf, dx, l.W.G)
	return Tensor{dx, l.x.Shape}
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
	rows            int
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
		Gamma: newParam(dev, name+".gamma", 0, 1, c), Beta: newParam(dev, name+".beta", 0, 0, c),
		RunMean: &State{Name: name + ".running_mean", Buf: dev.Alloc(c)},
		RunVar:  &State{Name: name + ".running_var", Buf: dev.Alloc(c), fill: 1},
		mean:    dev.Alloc(c), invStd: dev.Alloc(c)}
}

// Forward normalises x.
func (l *BatchNorm) Forward(x Tensor, train bool) Tensor {
	if c := x.Shape[len(x.Shape)-1]; c != l.C {
		panic(fmt.Sprintf("encoder: %s expects %d channels, got %d", l.Gamma.Name, l.C, c))
	}
	l.x, l.rows = x, x.Buf.Len()/l.C
	y := l.scratch("y", x.Buf.Len())
	if train {
		l.dev.BatchNormTrain(l.rows, l.C, x.Buf, l.Gamma.W, l.Beta.W, bnEps, bnMomentum, l.ReLU, l.RunMean.Buf, l.RunVar.Buf, l.mean, l.invStd, y)
	} else {
		l.dev.BatchNormEval(l.rows, l.C, x.Buf, l.Gamma.W, l.Beta.W, l.RunMean.Buf, l.RunVar.Buf, bnEps, l.ReLU, y)
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
	dx := l.scratch("dx", l.x.Buf.Len())
	var y kernels.Buffer
	if l.ReLU {
		y = l.y.Buf
	}
	l.dev.BatchNormBackward(l.rows, l.C, l.x.Buf, y, l.Gamma.W, l.mean, l.invStd, dy.Buf, dx, l.Gamma.G, l.Beta.G)
	return Tensor{dx, l.x.Shape}
}

// Params returns gamma and beta.
func (l *BatchNorm) Params() []*Param { return []*Param{l.Gamma, l.Beta} }

// States returns the running mean and variance.
func (l *BatchNorm) States() []*State { return []*State{l.RunMean, l.RunVar} }

// ReLU is max(x, 0).
type ReLU struct {
	base
	y Tensor
}

// NewReLU returns a ReLU layer.
func NewReLU(dev kernels.Device) *ReLU { return &ReLU{base: base{dev: dev}} }

// Forward clamps x at 0.
func (l *ReLU) Forward(x Tensor, train bool) Tensor {
	y := l.scratch("y", x.Buf.Len())
	l.dev.ReLU(x.Buf, y)
	l.y = Tensor{y, x.Shape}
	return l.y
}

// Backward masks dy.
func (l *ReLU) Backward(dy Tensor) Tensor {
	dx := l.scratch("dx", dy.Buf.Len())
	l.dev.ReLUBackward(l.y.Buf, dy.Buf, dx)
	return Tensor{dx, dy.Shape}
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
}

// NewLinear returns a fully connected layer, with a bias when bias is true.
func NewLinear(dev kernels.Device, name string, in, out int, bias bool) *Linear {
	l := &Linear{base: base{dev: dev}, In: in, Out: out, W: newParam(dev, name+".w", in, 0, out, in)}
	if bias {
		l.B = newParam(dev, name+".b", 0, 0, out)
	}
	return l
}

// Forward applies the layer to the rows of x (flattening images).
func (l *Linear) Forward(x Tensor, train bool) Tensor {
	if x.PerRow() != l.In {
		panic(fmt.Sprintf("encoder: %s expects %d inputs, got %d", l.W.Name, l.In, x.PerRow()))
	}
	l.x = x
	n := x.N()
	y := l.scratch("y", n*l.Out)
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
	dx := l.scratch("dx", n*l.In)
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
}

// NewGlobalAvgPool returns a global average pooling layer.
func NewGlobalAvgPool(dev kernels.Device) *GlobalAvgPool { return &GlobalAvgPool{base: base{dev: dev}} }

// Forward averages the planes.
func (l *GlobalAvgPool) Forward(x Tensor, train bool) Tensor {
	l.shape = x.Shape
	n, hw, c := x.Shape[0], x.Shape[1]*x.Shape[2], x.Shape[3]
	y := l.scratch("y", n*c)
	l.dev.GlobalAvgPool(n, hw, c, x.Buf, y)
	return Tensor{y, []int{n, c}}
}

// Backward spreads dy over the planes.
func (l *GlobalAvgPool) Backward(dy Tensor) Tensor {
	n, hw, c := l.shape[0], l.shape[1]*l.shape[2], l.shape[3]
	dx := l.scratch("dx", n*c*hw)
	l.dev.GlobalAvgPoolBackward(n, hw, c, dy.Buf, dx)
	return Tensor{dx, l.shape}
}

// Params returns nothing.
func (l *GlobalAvgPool) Params() []*Param { return nil }

// L2Norm divides each row by its Euclidean norm.
type L2Norm struct {
	base
	y     Tensor
	norms kernels.Buffer
}

// NewL2Norm returns an L2 normalisation layer.
func NewL2Norm(dev kernels.Device) *L2Norm { return &L2Norm{base: base{dev: dev}} }

// Forward normalises the rows.
func (l *L2Norm) Forward(x Tensor, train bool) Tensor {
	n, f := x.N(), x.PerRow()
	y := l.scratch("y", n*f)
	l.norms = l.scratch("norms", n)
	l.dev.L2Normalize(n, f, x.Buf, y, l.norms)
	l.y = Tensor{y, []int{n, f}}
	return l.y
}

// Backward projects dy onto the sphere's tangent space.
func (l *L2Norm) Backward(dy Tensor) Tensor {
	n, f := l.y.Shape[0], l.y.Shape[1]
	dx := l.scratch("dx", n*f)
	l.dev.L2NormalizeBackward(n, f, l.y.Buf, l.norms, dy.Buf, dx)
	return Tensor{dx, l.y.Shape}
}

// Params returns nothing.
func (l *L2Norm) Params() []*Param { return nil }

// Sequential runs layers one after another.
type Sequential struct {
	Layers []Layer
	prof   *Profile
}

// leaf reports whether a layer is timed as itself in a profile.
func leaf(l Layer) bool {
	switch l.(type) {
	case *Sequential, *BasicBlock:
		return false
	}
	return true
}

// Forward runs every layer.
func (s *Sequential) Forward(x Tensor, train bool) Tensor {
	for _, l := range s.Layers {
		if s.prof == nil || !leaf(l) {
			x = l.Forward(x, train)
			continue
		}
		t0 := time.Now()
		x = l.Forward(x, train)
		s.prof.Add(kind(l)+" forward", time.Since(t0))
	}
	return x
}

// Backward runs every layer's backward pass in reverse order.
func (s *Sequential) Backward(dy Tensor) Tensor {
	for i := len(s.Layers) - 1; i >= 0; i-- {
		l := s.Layers[i]
		if s.prof == nil || !leaf(l) {
			dy = l.Backward(dy)
			continue
		}
		t0 := time.Now()
		dy = l.Backward(dy)
		s.prof.Add(kind(l)+" backward", time.Since(t0))
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

// BasicBlock is ResNet's residual block: relu(bn2(conv2(relu(bn1(conv1 x))))
// + shortcut(x)), the shortcut a 1x1 convolution and batch norm when the
// stride or the width changes, else the identity.
type BasicBlock struct {
	base
	Main     *Sequential
	Shortcut *Sequential // nil for the identity
	out      *ReLU
	sum      kernels.Buffer
	prof     *Profile
}

// NewBasicBlock returns a residual block from in to out channels.
func NewBasicBlock(dev kernels.Device, name string, in, out, stride int) *BasicBlock {
	b := &BasicBlock{base: base{dev: dev}, out: NewReLU(dev), Main: &Sequential{Layers: []Layer{
		NewConv2D(dev, name+".conv1", in, out, 3, stride, 1), NewBatchNormReLU(dev, name+".bn1", out),
		NewConv2D(dev, name+".conv2", out, out, 3, 1, 1), NewBatchNorm(dev, name+".bn2", out),
	}}}
	if stride != 1 || in != out {
		b.Shortcut = &Sequential{Layers: []Layer{NewConv2D(dev, name+".shortcut.conv", in, out, 1, stride, 0), NewBatchNorm(dev, name+".shortcut.bn", out)}}
	}
	return b
}

// Forward adds the two paths and applies the ReLU.
func (b *BasicBlock) Forward(x Tensor, train bool) Tensor {
	m := b.Main.Forward(x, train)
	s := x
	if b.Shortcut != nil {
		s = b.Shortcut.Forward(x, train)
	}
	t0 := time.Now()
	b.sum = b.scratch("sum", m.Buf.Len())
	b.dev.Add(m.Buf, s.Buf, b.sum)
	y := b.out.Forward(Tensor{b.sum, m.Shape}, train)
	if b.prof != nil {
		b.prof.Add("residual add+relu forward", time.Since(t0))
	}
	return y
}

// Backward sends the gradient down both paths and adds their input
// gradients.
func (b *BasicBlock) Backward(dy Tensor) Tensor {
	t0 := time.Now()
	d := b.out.Backward(dy)
	spent := time.Since(t0)
	dm := b.Main.Backward(d)
	ds := d
	if b.Shortcut != nil {
		ds = b.Shortcut.Backward(d)
	}
	t1 := time.Now()
	dx := b.scratch("dx", dm.Buf.Len())
	b.dev.Add(dm.Buf, ds.Buf, dx)
	if b.prof != nil {
		b.prof.Add("residual add+relu backward", spent+time.Since(t1))
	}
	return Tensor{dx, dm.Shape}
}

// Params returns the parameters of both paths.
func (b *BasicBlock) Params() []*Param {
	p := b.Main.Params()
	if b.Shortcut != nil {
		p = append(p, b.Shortcut.Params()...)
	}
	return p
}

// States returns the batch norm statistics of both paths.
func (b *BasicBlock) States() []*State {
	s := b.Main.States()
	if b.Shortcut != nil {
		s = append(s, b.Shortcut.States()...)
	}
	return s
}

// initParams fills parameters deterministically from seed: Kaiming normal
// (std sqrt(2 / fan in)) for weights, constants for biases and batch norm;
// each parameter draws from its own stream, keyed by its name.
func initParams(dev kernels.Device, params []*Param, states []*State, seed uint64) {
	for _, p := range params {
		v := make([]float32, p.Len())
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
		dev.Upload(p.W, v)
		dev.Fill(p.G, 0)
		dev.Fill(p.V, 0)
	}
	for _, s := range states {
		dev.Fill(s.Buf, s.fill)
	}
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
