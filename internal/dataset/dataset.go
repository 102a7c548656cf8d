// Package dataset turns image data sets into the batches contrastive
// pretraining consumes: readers for IDX (MNIST, Fashion-MNIST), the CIFAR
// binary formats, folders of class sub-folders of PNG/JPEG images and a
// generated synthetic set; named data sets with their sources and checksums;
// deterministic augmentation presets; and samplers that assemble two-view,
// class-balanced batches on background goroutines.
package dataset

import (
	"fmt"
	"math"
)

// Dataset is one split of an image data set held in memory: N images of
// C x H x W bytes (channel-major within an image) and their labels.
type Dataset struct {
	// Name says where the data came from, for messages.
	Name string
	// Pixels holds N*C*H*W bytes, image after image.
	Pixels []byte
	// Labels holds one class index in [0, len(Classes)) per image.
	Labels []int32
	// Classes names the classes.
	Classes []string
	// C, H, W are the channels, height and width of every image.
	C, H, W int
}

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// ImageSize returns the bytes of one image, C*H*W.
func (d *Dataset) ImageSize() int { return d.C * d.H * d.W }

// Image returns the bytes of image i.
func (d *Dataset) Image(i int) []byte {
	s := d.ImageSize()
	return d.Pixels[i*s : (i+1)*s]
}

// check reports an inconsistent dataset: a size mismatch or a label out of
// range. Readers call it before returning.
func (d *Dataset) check() error {
	if d.C < 1 || d.H < 1 || d.W < 1 {
		return fmt.Errorf("%s: bad image shape %dx%dx%d", d.Name, d.C, d.H, d.W)
	}
	if len(d.Pixels) != len(d.Labels)*d.ImageSize() {
		return fmt.Errorf("%s: %d bytes of pixels for %d images of %dx%dx%d", d.Name, len(d.Pixels), len(d.Labels), d.C, d.H, d.W)
	}
	for i, y := range d.Labels {
		if y < 0 || int(y) >= len(d.Classes) {
			return fmt.Errorf("%s: image %d has label %d, outside the %d classes", d.Name, i, y, len(d.Classes))
		}
	}
	return nil
}

// ClassCounts returns the number of images of each class.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, len(d.Classes))
	for _, y := range d.Labels {
		counts[y]++
	}
	return counts
}

// MeanStd returns the per-channel mean and standard deviation of the pixel
// values scaled to [0, 1], the constants of the normalisation step.
func (d *Dataset) MeanStd() (mean, std []float32) {
	mean, std = make([]float32, d.C), make([]float32, d.C)
	plane := d.H * d.W
	if d.Len() == 0 {
		for c := range std {
			std[c] = 1
		}
		return mean, std
	}
	for c := range d.C {
		var hist [256]int64
		for i := range d.Len() {
			for _, v := range d.Image(i)[c*plane : (c+1)*plane] {
				hist[v]++
			}
		}
		var n, sum, sq float64
		for v, k := range hist {
			x := float64(v) / 255
			n += float64(k)
			sum += float64(k) * x
			sq += float64(k) * x * x
		}
		m := sum / n
		mean[c] = float32(m)
		std[c] = float32(math.Sqrt(max(sq/n-m*m, 1e-12)))
	}
	return mean, std
}

// Subset returns the images at the given indices, sharing nothing with d.
func (d *Dataset) Subset(indices []int) *Dataset {
	out := &Dataset{Name: d.Name, Classes: d.Classes, C: d.C, H: d.H, W: d.W,
		Pixels: make([]byte, 0, len(indices)*d.ImageSize()), Labels: make([]int32, 0, len(indices))}
	for _, i := range indices {
		out.Pixels = append(out.Pixels, d.Image(i)...)
		out.Labels = append(out.Labels, d.Labels[i])
	}
	return out
}

// FilterClasses keeps the images of the named classes (by index), relabelled
// 0..len(keep)-1 in the order given: the two-class and class-split
// experiments.
func (d *Dataset) FilterClasses(keep []int) (*Dataset, error) {
	newLabel := make(map[int32]int32, len(keep))
	names := make([]string, len(keep))
	for k, c := range keep {
		if c < 0 || c >= len(d.Classes) {
			return nil, fmt.Errorf("%s: no class %d (it has %d)", d.Name, c, len(d.Classes))
		}
		if _, dup := newLabel[int32(c)]; dup {
			return nil, fmt.Errorf("%s: class %d listed twice", d.Name, c)
		}
		newLabel[int32(c)] = int32(k)
		names[k] = d.Classes[c]
	}
	var idx []int
	for i, y := range d.Labels {
		if _, ok := newLabel[y]; ok {
			idx = append(idx, i)
		}
	}
	out := d.Subset(idx)
	out.Classes = names
	for i, y := range out.Labels {
		out.Labels[i] = newLabel[y]
	}
	return out, nil
}
