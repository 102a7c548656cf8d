package encoder

import (
	"fmt"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// kind names a leaf layer for the profile.
func kind(l Layer) string {
	switch l := l.(type) {
	case *Conv2D:
		return fmt.Sprintf("conv%dx%d", l.R, l.R)
	case *BatchNorm:
		if l.ReLU {
			return "batchnorm+relu"
		}
		return "batchnorm"
	case *ReLU:
		return "relu"
	case *Linear:
		return "linear"
	case *GlobalAvgPool:
		return "avgpool"
	case *L2Norm:
		return "l2norm"
	}
	return fmt.Sprintf("%T", l)
}

// SetProfile makes every layer of the model mark the device timer t after
// its forward and backward passes, as "<kind> forward" and "<kind>
// backward" (nil stops it).
func (m *Model) SetProfile(t kernels.Timer) {
	for _, s := range []*Sequential{m.Encoder, m.HeadNet} {
		s.setProfile(t)
	}
}

func (s *Sequential) setProfile(t kernels.Timer) {
	s.prof = t
	for _, l := range s.Layers {
		switch b := l.(type) {
		case *BasicBlock:
			b.setProfile(t)
		case *Bottleneck:
			b.setProfile(t)
		}
	}
}

// Flops returns the multiply-add work (2 flops each) of the products of
// one training step on n images: forward, and the filter and input
// gradients (none for the input of the first layer).
func (m *Model) Flops(n int) float64 {
	var total float64
	first := true
	shape := []int{n, m.Input[1], m.Input[2], m.Input[0]}
	var walk func(layers []Layer)
	walkResidual := func(b *residual) {
		in := shape
		walk(b.Main.Layers)
		out := shape
		if b.Shortcut != nil {
			shape = in
			walk(b.Shortcut.Layers)
		}
		shape = out
	}
	walk = func(layers []Layer) {
		for _, l := range layers {
			switch l := l.(type) {
			case *Conv2D:
				ho := (shape[1]+2*l.Pad-l.R)/l.Stride + 1
				wo := (shape[2]+2*l.Pad-l.R)/l.Stride + 1
				f := 2 * float64(shape[0]*ho*wo) * float64(l.R*l.R*l.In*l.Out)
				total += 2 * f // forward and filter gradient
				if !first {
					total += f
				}
				shape = []int{shape[0], ho, wo, l.Out}
			case *Linear:
				f := 2 * float64(shape[0]) * float64(l.In*l.Out)
				total += 2 * f
				if !first {
					total += f
				}
				shape = []int{shape[0], l.Out}
			case *GlobalAvgPool:
				shape = []int{shape[0], shape[3]}
			case *BasicBlock:
				walkResidual(&l.residual)
			case *Bottleneck:
				walkResidual(&l.residual)
			}
			first = false
		}
	}
	walk(m.Encoder.Layers)
	walk(m.HeadNet.Layers)
	return total
}
