package encoder

import (
	"fmt"
	"math"
	"strings"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// Architectures.
const (
	ArchMLP      = "mlp"
	ArchCNN      = "cnn"
	ArchResNet18 = "resnet18"
	ArchResNet50 = "resnet50"
)

// Archs lists the architecture names.
func Archs() []string { return []string{ArchMLP, ArchCNN, ArchResNet18, ArchResNet50} }

// Head kinds.
const (
	// HeadProjection is the contrastive methods' head: features -> hidden
	// -> ReLU -> embedding, L2-normalised.
	HeadProjection = "projection"
	// HeadClassifier is the cross-entropy baseline's linear classifier.
	HeadClassifier = "classifier"
)

// Config describes a network.
type Config struct {
	// Arch is mlp, cnn, resnet18 or resnet50.
	Arch string `yaml:"arch" mapstructure:"arch"`
	// Width multiplies every layer's channels (or units).
	Width float64 `yaml:"width" mapstructure:"width"`
	// HeadHidden is the projection head's hidden width; 0 means the
	// feature width.
	HeadHidden int `yaml:"head_hidden" mapstructure:"head_hidden"`
	// Embedding is the projection head's output width.
	Embedding int `yaml:"embedding" mapstructure:"embedding"`
}

// maxWidth bounds the projection head's widths.
const maxWidth = 1 << 16

// Validate reports a bad field by its key.
func (c Config) Validate() error {
	switch c.Arch {
	case ArchMLP, ArchCNN, ArchResNet18, ArchResNet50:
	default:
		return fmt.Errorf("model.arch: unknown architecture %q (want %s)", c.Arch, strings.Join(Archs(), ", "))
	}
	if !(c.Width > 0) || c.Width > 16 || math.IsInf(c.Width, 0) {
		return fmt.Errorf("model.width: must be in (0, 16], got %v", c.Width)
	}
	if c.HeadHidden < 0 || c.HeadHidden > maxWidth {
		return fmt.Errorf("model.head_hidden: must be 0 (the feature width) to %d, got %d", maxWidth, c.HeadHidden)
	}
	if c.Embedding < 1 || c.Embedding > maxWidth {
		return fmt.Errorf("model.embedding: must be 1 to %d, got %d", maxWidth, c.Embedding)
	}
	return nil
}

// Model is an encoder and a head, with its parameters, gradients and
// momentum in three arenas of one layout (so that the SGD step, the
// gradient norm and zeroing the gradients are one call each), its running
// statistics in a fourth, and its activations in a fifth that Prepare sizes
// for the largest batch it will see.
type Model struct {
	Config Config
	// Input is the image shape C, H, W (tensors are N x H x W x C).
	Input [3]int
	// Head is HeadProjection or HeadClassifier.
	Head string
	// Classes is the classifier's output width (0 for a projection head).
	Classes int
	// FeatureDim is the encoder's output width.
	FeatureDim int

	Encoder *Sequential
	HeadNet *Sequential
	dev     kernels.Device

	params, grads, moms, states *kernels.Arena
	acts                        *kernels.Arena
	in                          []int // per-row input shape: H, W, C
	prepared                    int   // rows the activations hold
	preparedTrain               bool  // with the backward pass's buffers
}

// width scales a base channel count, at least 1.
func width(base int, w float64) int { return max(1, int(math.Round(float64(base)*w))) }

// New builds a model for images of shape in, with a projection head or a
// classifier over classes, allocates its parameter arenas on dev and
// initialises it from seed. Call Prepare before the first Forward. A model
// of more than MaxParams parameters is refused before anything is
// allocated.
func New(dev kernels.Device, cfg Config, in [3]int, head string, classes int, seed uint64) (*Model, error) {
	m, err := build(dev, cfg, in, head, classes)
	if err != nil {
		return nil, err
	}
	if _, err := m.countParams(); err != nil {
		return nil, err
	}
	if err := m.allocate(seed); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// build makes a model's layers: shapes and names only, no device memory.
func build(dev kernels.Device, cfg Config, in [3]int, head string, classes int) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if in[0] < 1 || in[1] < 1 || in[2] < 1 {
		return nil, fmt.Errorf("bad input shape %v", in)
	}
	if _, ok := sizes.Product(maxInput, in[0], in[1], in[2]); !ok {
		return nil, fmt.Errorf("images of %dx%dx%d values are more than the %d an encoder takes", in[0], in[1], in[2], maxInput)
	}
	m := &Model{Config: cfg, Input: in, Head: head, dev: dev, in: []int{in[1], in[2], in[0]}}
	var layers []Layer
	w := cfg.Width
	switch cfg.Arch {
	case ArchMLP:
		h := width(512, w)
		layers = []Layer{
			NewLinear(dev, "encoder.fc1", in[0]*in[1]*in[2], h, false), NewBatchNormReLU(dev, "encoder.bn1", h),
			NewLinear(dev, "encoder.fc2", h, h, false), NewBatchNormReLU(dev, "encoder.bn2", h),
		}
		m.FeatureDim = h
	case ArchCNN:
		c1, c2, c3 := width(32, w), width(64, w), width(128, w)
		if in[1] < 4 || in[2] < 4 {
			return nil, fmt.Errorf("model.arch cnn needs images of at least 4x4, got %dx%d", in[1], in[2])
		}
		layers = []Layer{
			NewConv2D(dev, "encoder.conv1", in[0], c1, 3, 1, 1), NewBatchNormReLU(dev, "encoder.bn1", c1),
			NewConv2D(dev, "encoder.conv2", c1, c2, 3, 2, 1), NewBatchNormReLU(dev, "encoder.bn2", c2),
			NewConv2D(dev, "encoder.conv3", c2, c3, 3, 2, 1), NewBatchNormReLU(dev, "encoder.bn3", c3),
			NewGlobalAvgPool(dev),
		}
		m.FeatureDim = c3
	case ArchResNet18, ArchResNet50:
		if in[1] < 8 || in[2] < 8 {
			return nil, fmt.Errorf("model.arch %s needs images of at least 8x8, got %dx%d", cfg.Arch, in[1], in[2])
		}
		var feat int
		layers, feat = resNet(dev, cfg.Arch, in[0], w)
		m.FeatureDim = feat
	}
	switch first := layers[0].(type) { // the data needs no gradient
	case *Conv2D:
		first.NoInputGrad = true
	case *Linear:
		first.NoInputGrad = true
	}
	m.Encoder = &Sequential{Layers: layers}
	switch head {
	case HeadProjection:
		hidden := cfg.HeadHidden
		if hidden == 0 {
			hidden = m.FeatureDim
		}
		m.HeadNet = &Sequential{Layers: []Layer{
			NewLinear(dev, "head.fc1", m.FeatureDim, hidden, true), NewReLU(dev),
			NewLinear(dev, "head.fc2", hidden, cfg.Embedding, true), NewL2Norm(dev)}}
	case HeadClassifier:
		if classes < 2 {
			return nil, fmt.Errorf("a classifier needs at least 2 classes, got %d", classes)
		}
		m.Classes = classes
		m.HeadNet = &Sequential{Layers: []Layer{NewLinear(dev, "head.fc", m.FeatureDim, classes, true)}}
	default:
		return nil, fmt.Errorf("unknown head %q", head)
	}
	return m, nil
}

// maxInput bounds the values of one input image (2^28: a 3 x 9459 x 9459
// image), so that no size computed from it overflows.
const maxInput = 1 << 28

// Single returns a model made of one layer (and no head) for inputs of
// per-row shape in ([H, W, C] for images, [F] for vectors), its parameters
// in arenas and initialised from seed as a network's are: a layer tested
// through the same memory a network uses.
func Single(dev kernels.Device, l Layer, in []int, seed uint64) (*Model, error) {
	m := &Model{dev: dev, in: in, Encoder: &Sequential{Layers: []Layer{l}}, HeadNet: &Sequential{}}
	if err := m.allocate(seed); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// resNet returns the CIFAR ResNet layers (a 3x3 stride-1 stem, no max-pool,
// four stages, global average pooling) and the feature width: basic blocks
// 2-2-2-2 for resnet18 (features 512 x w), bottleneck blocks 3-4-6-3 for
// resnet50 (features 2048 x w).
func resNet(dev kernels.Device, arch string, channels int, w float64) ([]Layer, int) {
	c := width(64, w)
	layers := []Layer{NewConv2D(dev, "encoder.stem.conv", channels, c, 3, 1, 1), NewBatchNormReLU(dev, "encoder.stem.bn", c)}
	prev := c
	blocks := []int{2, 2, 2, 2}
	if arch == ArchResNet50 {
		blocks = []int{3, 4, 6, 3}
	}
	for stage, mult := range []int{1, 2, 4, 8} {
		planes := width(64*mult, w)
		for i := range blocks[stage] {
			stride := 1
			if i == 0 && stage > 0 {
				stride = 2
			}
			name := fmt.Sprintf("encoder.layer%d.%d", stage+1, i)
			if arch == ArchResNet50 {
				layers = append(layers, NewBottleneck(dev, name, prev, planes, stride))
				prev = bottleneckExpansion * planes
			} else {
				layers = append(layers, NewBasicBlock(dev, name, prev, planes, stride))
				prev = planes
			}
		}
	}
	return append(layers, NewGlobalAvgPool(dev)), prev
}

// allocate makes the parameter, gradient, momentum and state arenas, carves
// every parameter's three views in the same order (so the three share a
// layout), and uploads the initial values.
func (m *Model) allocate(seed uint64) error {
	params, states := m.Params(), m.States()
	var pb, sb []int
	for _, p := range params {
		pb = append(pb, kernels.FloatBytes(p.Len()))
	}
	for _, s := range states {
		sb = append(sb, kernels.FloatBytes(s.Len()))
	}
	var err error
	for _, a := range []struct {
		dst   **kernels.Arena
		name  string
		sizes []int
	}{{&m.params, "parameters", pb}, {&m.grads, "gradients", pb}, {&m.moms, "momentum", pb}, {&m.states, "running statistics", sb}} {
		if *a.dst, err = kernels.NewArena(m.dev, a.name, kernels.ArenaBytes(a.sizes...)); err != nil {
			return err
		}
	}
	for _, p := range params {
		if p.W, err = m.params.Take(p.Len()); err != nil {
			return err
		}
		if p.G, err = m.grads.Take(p.Len()); err != nil {
			return err
		}
		if p.V, err = m.moms.Take(p.Len()); err != nil {
			return err
		}
	}
	for _, s := range states {
		if s.Buf, err = m.states.Take(s.Len()); err != nil {
			return err
		}
	}
	m.dev.Upload(m.params.Floats(), initValues(params, m.params.Floats().Len(), seed))
	m.dev.Upload(m.states.Floats(), m.stateValues())
	return m.dev.Sync()
}

// stateValues lays out running statistics as their arena, each at its
// initial value.
func (m *Model) stateValues() []float32 {
	out := make([]float32, m.states.Floats().Len())
	for _, s := range m.States() {
		_, off := s.Buf.Mem()
		for i := range s.Len() {
			out[off+i] = s.fill
		}
	}
	return out
}

// Prepare sizes the activation buffers for batches of up to rows rows, with
// the backward pass's buffers when train is set. It allocates only when the
// model is not yet prepared for that many rows (and, with train, for the
// backward pass), so a training loop allocates once.
func (m *Model) Prepare(rows int, train bool) error {
	if rows < 1 {
		return fmt.Errorf("prepare for %d rows", rows)
	}
	if m.acts != nil && rows <= m.prepared && (m.preparedTrain || !train) {
		return nil
	}
	train = train || m.preparedTrain
	rows = max(rows, m.prepared)
	if m.acts != nil {
		if err := m.acts.Free(); err != nil {
			return err
		}
		m.acts = nil
	}
	in := m.in
	r := &reserver{rows: rows, train: train}
	if err := m.reserve(r, in); err != nil {
		return err
	}
	acts, err := kernels.NewArena(m.dev, "activations", kernels.ArenaBytes(r.bytes...))
	if err != nil {
		return fmt.Errorf("%d rows: %w", rows, err)
	}
	r.arena = acts
	if err := m.reserve(r, in); err != nil {
		return err
	}
	if r.err != nil {
		return r.err
	}
	m.acts, m.prepared, m.preparedTrain = acts, rows, train
	return nil
}

// reserve runs the reserver over the encoder and the head and, for
// training, assigns the gradient slots and reserves them.
func (m *Model) reserve(r *reserver, in []int) error {
	feat, err := m.Encoder.reserve(r, in)
	if err != nil {
		return err
	}
	if _, err = m.HeadNet.reserve(r, feat); err != nil || !r.train {
		return err
	}
	s := &gradSlots{}
	m.Encoder.assignGrad(s, m.HeadNet.assignGrad(s, -1))
	for range s.used {
		s.bufs = append(s.bufs, r.take(r.rows*r.gradPerRow))
	}
	return nil
}

// Close returns the model's memory to the device.
func (m *Model) Close() error {
	var first error
	for _, a := range []**kernels.Arena{&m.params, &m.grads, &m.moms, &m.states, &m.acts} {
		if *a != nil {
			if err := (*a).Free(); err != nil && first == nil {
				first = err
			}
			*a = nil
		}
	}
	return first
}

// Device returns the device the model lives on.
func (m *Model) Device() kernels.Device { return m.dev }

// Forward runs encoder and head.
func (m *Model) Forward(x Tensor, train bool) Tensor {
	return m.HeadNet.Forward(m.Encoder.Forward(x, train), train)
}

// Features runs the encoder alone, in evaluation mode.
func (m *Model) Features(x Tensor) Tensor { return m.Encoder.Forward(x, false) }

// Backward back-propagates dL/d(output) through head and encoder, adding
// every parameter's gradient to its G.
func (m *Model) Backward(dy Tensor) { m.Encoder.Backward(m.HeadNet.Backward(dy)) }

// Params returns every trainable parameter, encoder first.
func (m *Model) Params() []*Param { return append(m.Encoder.Params(), m.HeadNet.Params()...) }

// States returns every running statistic.
func (m *Model) States() []*State { return append(m.Encoder.States(), m.HeadNet.States()...) }

// ParamCount is the number of trainable values.
func (m *Model) ParamCount() int {
	n := 0
	for _, p := range m.Params() {
		n += p.Len()
	}
	return n
}

// OutDim is the width of the head's output.
func (m *Model) OutDim() int {
	if m.Head == HeadClassifier {
		return m.Classes
	}
	return m.Config.Embedding
}

// ZeroGrads clears every gradient: one call over the gradient arena.
func (m *Model) ZeroGrads() { m.dev.Fill(m.grads.Floats(), 0) }

// GradSumSquares sets out[0] to the squared norm of every gradient: one
// call over the gradient arena.
func (m *Model) GradSumSquares(out kernels.Scalars) { m.dev.SumSquares(m.grads.Floats(), out) }

// SGD takes one SGD step over every parameter (one call over the arenas),
// skipped on the device when guard holds a NaN or Inf.
func (m *Model) SGD(lr, momentum, decay float32, guard kernels.Scalars) {
	m.dev.SGD(m.params.Floats(), m.grads.Floats(), m.moms.Floats(), lr, momentum, decay, guard)
}
