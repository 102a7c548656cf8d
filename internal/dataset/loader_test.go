package dataset

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func synth(t *testing.T, classes, n, c, h, w int) *Dataset {
	t.Helper()
	d, err := Synthetic(SyntheticOptions{Classes: classes, Train: n, Test: 0, C: c, H: h, W: w, Seed: 3}, true)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAugmentNoneNormalises(t *testing.T) {
	a, err := NewAugmenter(AugmentNone, 1, 2, 2, []float32{0.5}, []float32{0.25})
	if err != nil {
		t.Fatal(err)
	}
	dst, work := make([]float32, 4), make([]float32, 8)
	a.Apply(rand.New(rand.NewPCG(1, 1)), []byte{0, 255, 51, 102}, dst, work)
	want := []float32{-2, 2, -1.2, -0.4}
	for i := range want {
		if math.Abs(float64(dst[i]-want[i])) > 1e-6 {
			t.Fatalf("dst %v, want %v", dst, want)
		}
	}
	if _, err := NewAugmenter("autoaugment", 1, 2, 2, []float32{0}, []float32{1}); err == nil {
		t.Error("unknown preset accepted")
	}
	if _, err := NewAugmenter(AugmentNone, 1, 2, 2, []float32{0}, []float32{0}); err == nil {
		t.Error("zero deviation accepted")
	}
}

func TestAugmentDigitsShifts(t *testing.T) {
	// One bright pixel in the middle of a 9x9 image: after the digits
	// augmentation it is still there, moved at most DigitsPad pixels.
	src := make([]byte, 81)
	src[4*9+4] = 255
	a, _ := NewAugmenter(AugmentDigits, 1, 9, 9, []float32{0}, []float32{1})
	dst, work := make([]float32, 81), make([]float32, 162)
	moved := map[[2]int]bool{}
	for seed := range uint64(200) {
		a.Apply(rand.New(rand.NewPCG(seed, 0)), src, dst, work)
		at := slices.Index(dst, 1)
		if at < 0 || slices.Max(dst) != 1 {
			t.Fatalf("seed %d: bright pixel lost: %v", seed, dst)
		}
		dr, dc := at/9-4, at%9-4
		if max(dr, -dr) > DigitsPad || max(dc, -dc) > DigitsPad {
			t.Fatalf("seed %d: moved by (%d, %d)", seed, dr, dc)
		}
		moved[[2]int{dr, dc}] = true
	}
	if len(moved) != (2*DigitsPad+1)*(2*DigitsPad+1) {
		t.Errorf("%d distinct shifts seen, want all %d", len(moved), (2*DigitsPad+1)*(2*DigitsPad+1))
	}
}

func TestAugmentCIFARIsDeterministicAndVaried(t *testing.T) {
	d := synth(t, 3, 3, 3, 32, 32)
	mean, std := d.MeanStd()
	a, _ := NewAugmenter(AugmentCIFAR, 3, 32, 32, mean, std)
	n := d.ImageSize()
	out := func(seed uint64) []float32 {
		dst, work := make([]float32, n), make([]float32, 2*n)
		a.Apply(rand.New(rand.NewPCG(seed, 9)), d.Image(0), dst, work)
		return dst
	}
	if !slices.Equal(out(5), out(5)) {
		t.Fatal("same seed, different views")
	}
	grayViews := 0
	for seed := range uint64(100) {
		v := out(seed)
		if slices.Equal(v, out(seed+1000)) {
			t.Fatalf("seeds %d and %d give the same view", seed, seed+1000)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.Abs(float64(x)) > 10 {
				t.Fatalf("seed %d: value %v", seed, x)
			}
		}
		// Grayscale views have equal channels (before normalisation); views
		// are channels last.
		gray := true
		for i := 0; i < 32*32 && gray; i++ {
			r, g := v[3*i]*std[0]+mean[0], v[3*i+1]*std[1]+mean[1]
			gray = math.Abs(float64(r-g)) < 1e-5
		}
		if gray {
			grayViews++
		}
	}
	if grayViews < 8 || grayViews > 35 {
		t.Errorf("%d of 100 views grayscale, want about 20", grayViews)
	}
}

func TestHSVRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		r, g, b := rng.Float32(), rng.Float32(), rng.Float32()
		h, s, v := rgbToHSV(r, g, b)
		r2, g2, b2 := hsvToRGB(h, s, v)
		if math.Abs(float64(r-r2))+math.Abs(float64(g-g2))+math.Abs(float64(b-b2)) > 1e-5 {
			t.Fatalf("(%v %v %v) -> (%v %v %v) -> (%v %v %v)", r, g, b, h, s, v, r2, g2, b2)
		}
	}
}

func TestBalancedSampler(t *testing.T) {
	d := synth(t, 5, 103, 1, 6, 6)
	for _, bs := range []int{20, 23} {
		l, err := NewLoader(d, LoaderOptions{BatchSize: bs, Views: 2, Sampler: SamplerBalanced, Augment: AugmentNone, Seed: 1, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if l.BatchesPerEpoch() != 103/bs {
			t.Fatalf("%d batches", l.BatchesPerEpoch())
		}
		total := make([]int, 5)
		b := l.NewBatch()
		for i := range l.BatchesPerEpoch() {
			l.Fill(0, i, b)
			counts := make([]int, 5)
			for k, idx := range b.Indices {
				counts[d.Labels[idx]]++
				if b.Labels[k] != int(d.Labels[idx]) || b.Labels[b.Size+k] != b.Labels[k] {
					t.Fatalf("labels of rows %d and %d do not match image %d", k, b.Size+k, idx)
				}
			}
			if slices.Max(counts)-slices.Min(counts) > 0 && bs%5 == 0 {
				t.Fatalf("batch %d of %d: class counts %v", i, bs, counts)
			}
			if slices.Max(counts)-slices.Min(counts) > 1 {
				t.Fatalf("batch %d of %d: class counts %v", i, bs, counts)
			}
			for c := range counts {
				total[c] += counts[c]
			}
		}
		if slices.Max(total)-slices.Min(total) > 1 {
			t.Errorf("batch %d: epoch class totals %v", bs, total)
		}
	}
}

func TestShuffledAndSequentialSamplers(t *testing.T) {
	d := synth(t, 4, 50, 1, 5, 5)
	l, _ := NewLoader(d, LoaderOptions{BatchSize: 16, Views: 1, Sampler: SamplerShuffled, Augment: AugmentNone, Seed: 2})
	seen := map[int]bool{}
	b := l.NewBatch()
	for i := range l.BatchesPerEpoch() {
		l.Fill(3, i, b)
		for _, idx := range b.Indices {
			if seen[idx] {
				t.Fatalf("image %d twice in an epoch", idx)
			}
			seen[idx] = true
		}
	}
	if len(seen) != 48 {
		t.Errorf("%d images in an epoch of 3 batches of 16", len(seen))
	}
	first := append([]int(nil), b.Indices...)
	l.Fill(4, 2, b)
	if slices.Equal(first, b.Indices) {
		t.Error("epochs 3 and 4 have the same last batch")
	}
	s, _ := NewLoader(d, LoaderOptions{BatchSize: 16, Views: 1, Sampler: SamplerSequential, Augment: AugmentNone})
	if s.BatchesPerEpoch() != 4 {
		t.Fatalf("%d sequential batches", s.BatchesPerEpoch())
	}
	s.Fill(0, 3, b)
	if b.Size != 2 || b.Indices[0] != 48 || b.Rows() != 2 {
		t.Errorf("last sequential batch: size %d, indices %v", b.Size, b.Indices)
	}
	if _, err := NewLoader(d, LoaderOptions{BatchSize: 16, Views: 1, Sampler: "weighted", Augment: AugmentNone}); err == nil {
		t.Error("unknown sampler accepted")
	}
	if _, err := NewLoader(d, LoaderOptions{BatchSize: 51, Views: 1, Sampler: SamplerShuffled, Augment: AugmentNone}); err == nil {
		t.Error("batch larger than the data set accepted")
	}
}

// collect runs an epoch through a Stream and returns copies of its batches.
func collect(t *testing.T, l *Loader, epoch, from int) []Batch {
	t.Helper()
	s := l.Stream(context.Background(), epoch, from)
	defer s.Close()
	var out []Batch
	for {
		b, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			return out
		}
		c := *b
		c.Images = slices.Clone(b.Images)
		c.Labels = slices.Clone(b.Labels)
		c.Indices = slices.Clone(b.Indices)
		out = append(out, c)
	}
}

func TestStreamIsDeterministicAcrossWorkers(t *testing.T) {
	d := synth(t, 4, 120, 3, 12, 12)
	opt := LoaderOptions{BatchSize: 16, Views: 2, Sampler: SamplerBalanced, Augment: AugmentCIFAR, Seed: 9}
	var ref []Batch
	for _, workers := range []int{1, 2, 5} {
		opt.Workers = workers
		opt.Prefetch = workers
		l, err := NewLoader(d, opt)
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, l, 1, 0)
		if len(got) != l.BatchesPerEpoch() {
			t.Fatalf("%d workers: %d batches", workers, len(got))
		}
		if ref == nil {
			ref = got
			continue
		}
		for i := range got {
			if got[i].Index != i || !slices.Equal(got[i].Images, ref[i].Images) || !slices.Equal(got[i].Labels, ref[i].Labels) {
				t.Fatalf("%d workers: batch %d differs from 1 worker's", workers, i)
			}
		}
	}
	// Two views of an image differ; resuming mid-epoch gives the same batches.
	b := ref[0]
	s := d.ImageSize()
	if slices.Equal(b.Images[:s], b.Images[b.Size*s:(b.Size+1)*s]) {
		t.Error("the two views of image 0 are identical")
	}
	l, _ := NewLoader(d, opt)
	resumed := collect(t, l, 1, 3)
	for i := range resumed {
		if !slices.Equal(resumed[i].Images, ref[3+i].Images) {
			t.Fatalf("resumed batch %d differs", 3+i)
		}
	}
}

func TestStreamCloseEarly(t *testing.T) {
	d := synth(t, 2, 64, 1, 8, 8)
	l, _ := NewLoader(d, LoaderOptions{BatchSize: 8, Views: 2, Sampler: SamplerShuffled, Augment: AugmentDigits, Workers: 3})
	s := l.Stream(context.Background(), 0, 0)
	if b, err := s.Next(); err != nil || b == nil {
		t.Fatal(b, err)
	}
	s.Close() // must not hang with batches in flight
	ctx, cancel := context.WithCancel(context.Background())
	s = l.Stream(ctx, 0, 0)
	cancel()
	for {
		b, err := s.Next()
		if err != nil || b == nil {
			break
		}
	}
	s.Close()
}

func TestStratifiedSubset(t *testing.T) {
	d := &Dataset{Name: "t", C: 1, H: 1, W: 1, Classes: []string{"a", "b", "c"}}
	for i := range 100 {
		y := int32(0)
		if i >= 60 {
			y = 1
		}
		if i >= 90 {
			y = 2
		}
		d.Labels = append(d.Labels, y)
		d.Pixels = append(d.Pixels, byte(i))
	}
	s, err := StratifiedSubset(d, 20, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ClassCounts(); !slices.Equal(got, []int{12, 6, 2}) {
		t.Errorf("class counts %v, want [12 6 2]", got)
	}
	if !slices.IsSorted(s.Pixels) {
		t.Error("subset not in the original order")
	}
	s2, _ := StratifiedSubset(d, 20, 4)
	s3, _ := StratifiedSubset(d, 20, 5)
	if !slices.Equal(s.Pixels, s2.Pixels) || slices.Equal(s.Pixels, s3.Pixels) {
		t.Error("subset not determined by its seed")
	}
	if _, err := StratifiedSubset(d, 101, 1); err == nil {
		t.Error("subset larger than the set accepted")
	}
}
