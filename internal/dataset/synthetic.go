package dataset

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sincere-ml/sincere/internal/sizes"
)

// SyntheticOptions describes a generated, class-structured image set: each
// class has a smooth random prototype, and each image is its class's
// prototype, shifted by a few pixels, with random contrast and pixel noise.
// Classes are learnable but not trivially separable; the same options give
// the same images.
type SyntheticOptions struct {
	Classes     int
	Train, Test int // images per split, the classes in turn
	C, H, W     int
	Seed        uint64
}

// DefaultSynthetic is the `synthetic` named data set: MNIST-shaped, small.
var DefaultSynthetic = SyntheticOptions{Classes: 10, Train: 6000, Test: 1000, C: 1, H: 28, W: 28, Seed: 1}

// Bounds of a data set's classes and channels.
const (
	maxClasses  = 1 << 16
	maxChannels = 64
)

// Validate reports an option out of range.
func (o SyntheticOptions) Validate() error {
	if o.Classes < 1 || o.Classes > maxClasses || o.Train < 0 || o.Test < 0 || o.C < 1 || o.C > maxChannels ||
		o.H < 4 || o.W < 4 || o.H > sizes.MaxImageSide || o.W > sizes.MaxImageSide {
		return fmt.Errorf("synthetic data set: want 1 to %d classes, >= 0 images, 1 to %d channels and 4x4 to %dx%d pixels, got %+v",
			maxClasses, maxChannels, sizes.MaxImageSide, sizes.MaxImageSide, o)
	}
	for _, n := range []int{o.Train, o.Test} {
		if _, err := sizes.Check("synthetic data set", "bytes", sizes.MaxDatasetBytes, n, o.C, o.H, o.W); err != nil {
			return err
		}
	}
	return nil
}

// Synthetic generates the training or test split.
func Synthetic(o SyntheticOptions, train bool) (*Dataset, error) {
	return synthetic(context.Background(), o, train)
}

// synthetic is Synthetic, stopping when ctx ends.
func synthetic(ctx context.Context, o SyntheticOptions, train bool) (*Dataset, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	protos := syntheticPrototypes(o)
	n, split := o.Test, uint64(2)
	if train {
		n, split = o.Train, 1
	}
	d := &Dataset{Name: "synthetic", C: o.C, H: o.H, W: o.W,
		Pixels: make([]byte, n*o.C*o.H*o.W), Labels: make([]int32, n)}
	for k := range o.Classes {
		d.Classes = append(d.Classes, fmt.Sprintf("class%d", k))
	}
	plane := o.H * o.W
	for i := range n {
		if i%64 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("synthetic data set: loading stopped: %w", ctx.Err())
		}
		y := i % o.Classes
		d.Labels[i] = int32(y)
		rng := rand.New(rand.NewPCG(o.Seed^split<<56, uint64(i)))
		dx, dy := rng.IntN(7)-3, rng.IntN(7)-3
		gain := 0.7 + 0.6*rng.Float64()
		img := d.Image(i)
		for c := range o.C {
			p := protos[y][c*plane : (c+1)*plane]
			for r := range o.H {
				for col := range o.W {
					sr := min(max(r+dy, 0), o.H-1)
					sc := min(max(col+dx, 0), o.W-1)
					v := 0.5 + gain*(p[sr*o.W+sc]-0.5) + 0.1*rng.NormFloat64()
					img[c*plane+r*o.W+col] = byte(math.Round(255 * min(max(v, 0), 1)))
				}
			}
		}
	}
	return d, d.check()
}

// syntheticPrototypes draws each class's prototype: a sum of random oriented
// gratings and Gaussian blobs, scaled to [0, 1].
func syntheticPrototypes(o SyntheticOptions) [][]float64 {
	rng := rand.New(rand.NewPCG(o.Seed, 0x5ca1ab1e))
	plane := o.H * o.W
	protos := make([][]float64, o.Classes)
	for k := range protos {
		p := make([]float64, o.C*plane)
		for c := range o.C {
			for range 3 {
				theta, freq, phase := rng.Float64()*math.Pi, 0.5+2.5*rng.Float64(), rng.Float64()*2*math.Pi
				bx, by, bs := rng.Float64()*float64(o.W), rng.Float64()*float64(o.H), 2+rng.Float64()*float64(o.W)/4
				for r := range o.H {
					for col := range o.W {
						u := (float64(col)*math.Cos(theta) + float64(r)*math.Sin(theta)) / float64(o.W)
						g := math.Sin(2*math.Pi*freq*u + phase)
						b := math.Exp(-((float64(col)-bx)*(float64(col)-bx) + (float64(r)-by)*(float64(r)-by)) / (2 * bs * bs))
						p[c*plane+r*o.W+col] += 0.5*g + 1.5*b
					}
				}
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range p[c*plane : (c+1)*plane] {
				lo, hi = min(lo, v), max(hi, v)
			}
			for i := c * plane; i < (c+1)*plane; i++ {
				p[i] = (p[i] - lo) / (hi - lo + 1e-9)
			}
		}
		protos[k] = p
	}
	return protos
}
