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
