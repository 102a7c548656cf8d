package encoder

import (
	"fmt"

	"github.com/sincere-ml/sincere/internal/sizes"
)

// MaxParams bounds the trainable values of a model (2^29: with their
// gradients and momentum, 6 GiB), so that a configuration or a model file
// cannot make New allocate without end.
const MaxParams = 1 << 29

// ParamCount returns the number of trainable values New builds for cfg,
// images of shape in, the head and its classes, from the layers' shapes
// alone (nothing is allocated), or an error naming the limit when it is
// more than MaxParams. Readers of model files check it before building
// anything.
func ParamCount(cfg Config, in [3]int, head string, classes int) (int64, error) {
	m, err := build(nil, cfg, in, head, classes)
	if err != nil {
		return 0, err
	}
	return m.countParams()
}

// countParams sums the parameters' sizes, checking each product and the
// total against MaxParams.
func (m *Model) countParams() (int64, error) {
	var total int64
	for _, p := range m.Params() {
		n, ok := sizes.Product(MaxParams, p.Shape...)
		if !ok || total+n > MaxParams {
			return 0, fmt.Errorf("a %s encoder of width %g on %dx%dx%d images with a %s head has more than the %d parameters a model may have",
				m.Config.Arch, m.Config.Width, m.Input[0], m.Input[1], m.Input[2], m.Head, MaxParams)
		}
		total += n
	}
	return total, nil
}

// MaxActivation bounds the values of the largest activation of a forward
// pass (2^31: 8 GiB of float32; a pass holds several of them).
const MaxActivation = 1 << 31

// ActivationCount returns the values of the largest activation a forward
// pass over rows images of shape in produces (for the convolutional
// encoders, the first layers' output at full resolution), computed from the
// shapes alone, or an error naming the limit when it is more than
// MaxActivation: a batch of large images that could not fit is refused
// before anything is allocated.
func ActivationCount(cfg Config, in [3]int, rows int) (int64, error) {
	w := cfg.Width
	var factors []int
	switch cfg.Arch {
	case ArchMLP:
		factors = []int{rows, max(width(512, w), in[0]*in[1]*in[2])}
	case ArchCNN:
		factors = []int{rows, in[1], in[2], max(width(32, w), in[0])}
	case ArchResNet18:
		factors = []int{rows, in[1], in[2], max(width(64, w), in[0])}
	case ArchResNet50: // the first stage's bottlenecks expand to 4 x 64 channels at full resolution
		factors = []int{rows, in[1], in[2], max(bottleneckExpansion*width(64, w), in[0])}
	default:
		return 0, fmt.Errorf("model.arch: unknown architecture %q", cfg.Arch)
	}
	n, ok := sizes.Product(MaxActivation, factors...)
	if !ok {
		return 0, fmt.Errorf("a batch of %d images of %dx%dx%d makes activations of more than the %d values a %s encoder of width %g may have (fewer images per batch, or smaller ones)",
			rows, in[0], in[1], in[2], MaxActivation, cfg.Arch, cfg.Width)
	}
	return n, nil
}
