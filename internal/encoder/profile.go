package encoder

import (
	"fmt"
	"slices"
	"time"
)

// Profile accumulates the time each kind of layer spends forward and
// backward, for `sincere bench train`. The zero value is ready.
type Profile struct {
	times map[string]time.Duration
}

// Add records d under a name such as "conv forward".
func (p *Profile) Add(name string, d time.Duration) {
	if p.times == nil {
		p.times = map[string]time.Duration{}
	}
	p.times[name] += d
}

// Times returns the recorded names, largest first, and their totals.
func (p *Profile) Times() ([]string, map[string]time.Duration) {
	names := make([]string, 0, len(p.times))
	for n := range p.times {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return int(p.times[b] - p.times[a]) })
	return names, p.times
}

// Reset clears the totals.
func (p *Profile) Reset() { p.times = nil }

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

// SetProfile makes every layer of the model report its time to p (nil
// stops it).
func (m *Model) SetProfile(p *Profile) {
	for _, s := range []*Sequential{m.Encoder, m.HeadNet} {
		s.setProfile(p)
	}
}

func (s *Sequential) setProfile(p *Profile) {
	s.prof = p
	for _, l := range s.Layers {
		if b, ok := l.(*BasicBlock); ok {
			b.prof = p
			b.Main.setProfile(p)
			if b.Shortcut != nil {
				b.Shortcut.setProfile(p)
			}
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
				in := shape
				walk(l.Main.Layers)
				out := shape
				if l.Shortcut != nil {
					shape = in
					walk(l.Shortcut.Layers)
				}
				shape = out
			}
			first = false
		}
	}
	walk(m.Encoder.Layers)
	walk(m.HeadNet.Layers)
	return total
}
