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
// images of shape in, the head and its classes, computed from the shapes
// alone (nothing is allocated), or an error naming the limit when it is
// more than MaxParams. New checks it first; readers of model files check
// it before building anything.
func ParamCount(cfg Config, in [3]int, head string, classes int) (int64, error) {
	var total int64
	ok := true
	add := func(factors ...int) {
		p, fits := sizes.Product(MaxParams, factors...)
		ok = ok && fits && total+p <= MaxParams
		if ok {
			total += p
		}
	}
	bn := func(c int) { add(2, c) }
	w := cfg.Width
	var feat int
	switch cfg.Arch {
	case ArchMLP:
		h := width(512, w)
		add(in[0], in[1], in[2], h)
		bn(h)
		add(h, h)
		bn(h)
		feat = h
	case ArchCNN:
		c1, c2, c3 := width(32, w), width(64, w), width(128, w)
		add(9, in[0], c1)
		bn(c1)
		add(9, c1, c2)
		bn(c2)
		add(9, c2, c3)
		bn(c3)
		feat = c3
	case ArchResNet18:
		c := width(64, w)
		add(9, in[0], c)
		bn(c)
		prev := c
		for stage, mult := range []int{1, 2, 4, 8} {
			out := width(64*mult, w)
			add(9, prev, out) // block 0
			bn(out)
			add(9, out, out)
			bn(out)
			if stage > 0 || prev != out {
				add(prev, out)
				bn(out)
			}
			add(9, out, out) // block 1
			bn(out)
			add(9, out, out)
			bn(out)
			prev = out
		}
		feat = prev
	default:
		return 0, fmt.Errorf("model.arch: unknown architecture %q", cfg.Arch)
	}
	switch head {
	case HeadProjection:
		hidden := cfg.HeadHidden
		if hidden == 0 {
			hidden = feat
		}
		add(feat, hidden)
		add(hidden)
		add(hidden, cfg.Embedding)
		add(cfg.Embedding)
	case HeadClassifier:
		add(feat, classes)
		add(classes)
	default:
		return 0, fmt.Errorf("unknown head %q", head)
	}
	if !ok {
		return 0, fmt.Errorf("a %s encoder of width %g on %dx%dx%d images with a %s head has more than the %d parameters a model may have",
			cfg.Arch, cfg.Width, in[0], in[1], in[2], head, MaxParams)
	}
	return total, nil
}
