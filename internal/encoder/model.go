package encoder

import (
	"fmt"
	"math"
	"strings"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// Architectures.
const (
	ArchMLP      = "mlp"
	ArchCNN      = "cnn"
	ArchResNet18 = "resnet18"
)

// Archs lists the architecture names.
func Archs() []string { return []string{ArchMLP, ArchCNN, ArchResNet18} }

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
	// Arch is mlp, cnn or resnet18.
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
	case ArchMLP, ArchCNN, ArchResNet18:
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

// Model is an encoder and a head.
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
}

// width scales a base channel count, at least 1.
func width(base int, w float64) int { return max(1, int(math.Round(float64(base)*w))) }

// New builds a model for images of shape in, with a projection head or a
// classifier over classes, and initialises it from seed.
func New(dev kernels.Device, cfg Config, in [3]int, head string, classes int, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if in[0] < 1 || in[1] < 1 || in[2] < 1 {
		return nil, fmt.Errorf("bad input shape %v", in)
	}
	if _, err := ParamCount(cfg, in, head, classes); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Input: in, Head: head, dev: dev}
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
	case ArchResNet18:
		if in[1] < 8 || in[2] < 8 {
			return nil, fmt.Errorf("model.arch resnet18 needs images of at least 8x8, got %dx%d", in[1], in[2])
		}
		c := width(64, w)
		layers = []Layer{NewConv2D(dev, "encoder.stem.conv", in[0], c, 3, 1, 1), NewBatchNormReLU(dev, "encoder.stem.bn", c)}
		prev := c
		for stage, mult := range []int{1, 2, 4, 8} {
			out := width(64*mult, w)
			stride := 2
			if stage == 0 {
				stride = 1
			}
			layers = append(layers,
				NewBasicBlock(dev, fmt.Sprintf("encoder.layer%d.0", stage+1), prev, out, stride),
				NewBasicBlock(dev, fmt.Sprintf("encoder.layer%d.1", stage+1), out, out, 1))
			prev = out
		}
		layers = append(layers, NewGlobalAvgPool(dev))
		m.FeatureDim = prev
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
	initParams(dev, m.Params(), m.States(), seed)
	return m, nil
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

// ZeroGrads clears every gradient.
func (m *Model) ZeroGrads() {
	for _, p := range m.Params() {
		m.dev.Fill(p.G, 0)
	}
}
