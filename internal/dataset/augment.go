package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Augmentation presets.
const (
	// AugmentNone only scales to [0, 1] and normalises.
	AugmentNone = "none"
	// AugmentDigits shifts the image by a random crop of the image padded
	// with DigitsPad zero pixels; no flips (digits have a handedness).
	AugmentDigits = "digits"
	// AugmentCIFAR is the SupCon/SINCERE recipe: random resized crop (scale
	// 0.2 to 1, aspect 3/4 to 4/3), horizontal flip, colour jitter
	// 0.4/0.4/0.4/0.1 with p = 0.8, grayscale with p = 0.2.
	AugmentCIFAR = "cifar"
)

// DigitsPad is the padding of the digits preset's random crop, in pixels.
const DigitsPad = 2

// Presets lists the augmentation preset names.
func Presets() []string { return []string{AugmentNone, AugmentDigits, AugmentCIFAR} }

// Augmenter turns a stored image into one augmented, normalised float32
// view. It holds only constants, so one Augmenter serves every goroutine.
type Augmenter struct {
	preset    string
	C, H, W   int
	mean, inv []float32 // per channel: mean and 1/std of the [0, 1] values
}

// NewAugmenter returns the augmenter of a preset for images of C x H x W,
// normalising each channel with the given mean and standard deviation.
func NewAugmenter(preset string, c, h, w int, mean, std []float32) (*Augmenter, error) {
	switch preset {
	case AugmentNone, AugmentDigits, AugmentCIFAR:
	default:
		return nil, fmt.Errorf("unknown augmentation %q (want one of %s)", preset, strings.Join(Presets(), ", "))
	}
	if len(mean) != c || len(std) != c {
		return nil, fmt.Errorf("augmentation: %d means and %d deviations for %d channels", len(mean), len(std), c)
	}
	a := &Augmenter{preset: preset, C: c, H: h, W: w, mean: mean, inv: make([]float32, c)}
	for i, s := range std {
		if !(s > 0) {
			return nil, fmt.Errorf("augmentation: channel %d has standard deviation %v", i, s)
		}
		a.inv[i] = 1 / s
	}
	return a, nil
}

// Apply writes one view of src (C x H x W bytes, as stored) into dst
// (H x W x C float32, channels last, the layout the encoder computes in),
// drawing its random choices from rng; work is scratch of at least 2*C*H*W
// floats.
func (a *Augmenter) Apply(rng *rand.Rand, src []byte, dst, work []float32) {
	n := a.C * a.H * a.W
	x := work[:n]
	switch a.preset {
	case AugmentNone:
		for i, v := range src[:n] {
			x[i] = float32(v) / 255
		}
	case AugmentDigits:
		a.shift(rng, src, x)
	case AugmentCIFAR:
		a.resizedCrop(rng, src, x)
		if rng.IntN(2) == 0 {
			a.flip(x)
		}
		if rng.Float64() < 0.8 {
			a.jitter(rng, x, work[n:2*n])
		}
		if a.C == 3 && rng.Float64() < 0.2 {
			a.grayscale(x)
		}
	}
	plane := a.H * a.W
	for c := range a.C {
		m, s := a.mean[c], a.inv[c]
		for i, v := range x[c*plane : (c+1)*plane] {
			dst[i*a.C+c] = (v - m) * s
		}
	}
}

// shift is a random crop of the image padded by DigitsPad zeros.
func (a *Augmenter) shift(rng *rand.Rand, src []byte, x []float32) {
	dx, dy := rng.IntN(2*DigitsPad+1)-DigitsPad, rng.IntN(2*DigitsPad+1)-DigitsPad
	plane := a.H * a.W
	for c := range a.C {
		for r := range a.H {
			sr := r + dy
			for col := range a.W {
				sc := col + dx
				var v float32
				if sr >= 0 && sr < a.H && sc >= 0 && sc < a.W {
					v = float32(src[c*plane+sr*a.W+sc]) / 255
				}
				x[c*plane+r*a.W+col] = v
			}
		}
	}
}

// cropBox draws a random resized crop's box as torchvision does: up to ten
// tries at an area of 0.2 to 1 of the image and an aspect ratio of 3/4 to
// 4/3 (log-uniform), else the whole image.
func (a *Augmenter) cropBox(rng *rand.Rand) (top, left, h, w int) {
	area := float64(a.H * a.W)
	logLo, logHi := math.Log(3.0/4), math.Log(4.0/3)
	for range 10 {
		target := area * (0.2 + 0.8*rng.Float64())
		ratio := math.Exp(logLo + (logHi-logLo)*rng.Float64())
		w := int(math.Round(math.Sqrt(target * ratio)))
		h := int(math.Round(math.Sqrt(target / ratio)))
		if w > 0 && h > 0 && w <= a.W && h <= a.H {
			return rng.IntN(a.H - h + 1), rng.IntN(a.W - w + 1), h, w
		}
	}
	return 0, 0, a.H, a.W
}

// resizedCrop scales a random box of src to the full image, bilinearly.
func (a *Augmenter) resizedCrop(rng *rand.Rand, src []byte, x []float32) {
	top, left, h, w := a.cropBox(rng)
	plane := a.H * a.W
	sy, sx := float64(h)/float64(a.H), float64(w)/float64(a.W)
	for r := range a.H {
		fy := min(max((float64(r)+0.5)*sy-0.5, 0), float64(h-1))
		y0 := int(fy)
		y1 := min(y0+1, h-1)
		wy := float32(fy - float64(y0))
		for col := range a.W {
			fx := min(max((float64(col)+0.5)*sx-0.5, 0), float64(w-1))
			x0 := int(fx)
			x1 := min(x0+1, w-1)
			wx := float32(fx - float64(x0))
			for c := range a.C {
				p := src[c*plane:]
				v00 := float32(p[(top+y0)*a.W+left+x0])
				v01 := float32(p[(top+y0)*a.W+left+x1])
				v10 := float32(p[(top+y1)*a.W+left+x0])
				v11 := float32(p[(top+y1)*a.W+left+x1])
				v := (v00*(1-wx)+v01*wx)*(1-wy) + (v10*(1-wx)+v11*wx)*wy
				x[c*plane+r*a.W+col] = v / 255
			}
		}
	}
}

// flip mirrors the image left to right.
func (a *Augmenter) flip(x []float32) {
	for c := range a.C {
		for r := range a.H {
			row := x[(c*a.H+r)*a.W : (c*a.H+r+1)*a.W]
			for i, j := 0, len(row)-1; i < j; i, j = i+1, j-1 {
				row[i], row[j] = row[j], row[i]
			}
		}
	}
}

// jitter is torchvision's ColorJitter(0.4, 0.4, 0.4, 0.1): brightness,
// contrast, saturation and hue factors drawn uniformly, applied in a random
// order. One-channel images get brightness and contrast only.
func (a *Augmenter) jitter(rng *rand.Rand, x, gray []float32) {
	b := 0.6 + 0.8*rng.Float32()
	ct := 0.6 + 0.8*rng.Float32()
	s := 0.6 + 0.8*rng.Float32()
	hue := -0.1 + 0.2*rng.Float32()
	for _, op := range rng.Perm(4) {
		switch op {
		case 0:
			for i, v := range x {
				x[i] = clamp01(v * b)
			}
		case 1:
			m := a.meanGray(x)
			for i, v := range x {
				x[i] = clamp01(ct*v + (1-ct)*m)
			}
		case 2:
			if a.C == 3 {
				a.luminance(x, gray)
				plane := a.H * a.W
				for c := range 3 {
					for i := range plane {
						x[c*plane+i] = clamp01(s*x[c*plane+i] + (1-s)*gray[i])
					}
				}
			}
		case 3:
			if a.C == 3 {
				a.shiftHue(x, hue)
			}
		}
	}
}

func clamp01(v float32) float32 { return min(max(v, 0), 1) }

// luminance writes the ITU-R 601 luma of each pixel of an RGB image into gray.
func (a *Augmenter) luminance(x, gray []float32) {
	plane := a.H * a.W
	for i := range plane {
		gray[i] = 0.299*x[i] + 0.587*x[plane+i] + 0.114*x[2*plane+i]
	}
}

// meanGray is the mean luma of the image (the mean value for one channel).
func (a *Augmenter) meanGray(x []float32) float32 {
	plane := a.H * a.W
	var sum float64
	if a.C == 3 {
		for i := range plane {
			sum += float64(0.299*x[i] + 0.587*x[plane+i] + 0.114*x[2*plane+i])
		}
	} else {
		for _, v := range x[:plane] {
			sum += float64(v)
		}
	}
	return float32(sum / float64(plane))
}

// grayscale replaces each channel of an RGB image by the luma.
func (a *Augmenter) grayscale(x []float32) {
	plane := a.H * a.W
	for i := range plane {
		l := 0.299*x[i] + 0.587*x[plane+i] + 0.114*x[2*plane+i]
		x[i], x[plane+i], x[2*plane+i] = l, l, l
	}
}

// shiftHue rotates the hue of every pixel by h turns, through HSV.
func (a *Augmenter) shiftHue(x []float32, h float32) {
	plane := a.H * a.W
	for i := range plane {
		r, g, b := x[i], x[plane+i], x[2*plane+i]
		hh, s, v := rgbToHSV(r, g, b)
		hh += h
		hh -= float32(math.Floor(float64(hh)))
		x[i], x[plane+i], x[2*plane+i] = hsvToRGB(hh, s, v)
	}
}

// rgbToHSV converts a colour with channels in [0, 1]; hue is in [0, 1).
func rgbToHSV(r, g, b float32) (h, s, v float32) {
	mx, mn := max(r, g, b), min(r, g, b)
	v = mx
	d := mx - mn
	if mx <= 0 || d <= 0 {
		return 0, 0, v
	}
	s = d / mx
	switch mx {
	case r:
		h = (g - b) / d
	case g:
		h = 2 + (b-r)/d
	default:
		h = 4 + (r-g)/d
	}
	h /= 6
	if h < 0 {
		h++
	}
	return h, s, v
}

// hsvToRGB is the inverse of rgbToHSV.
func hsvToRGB(h, s, v float32) (r, g, b float32) {
	h6 := h * 6
	i := int(h6) % 6
	f := h6 - float32(int(h6))
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	switch i {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	}
	return v, p, q
}
