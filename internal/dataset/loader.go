package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/sincere-ml/sincere/internal/sizes"
)

// Samplers: how a loader picks the images of each batch.
const (
	// SamplerBalanced gives every class the same number of images in each
	// batch (as the SINCERE authors train): with B images and C classes,
	// each class gets B/C, and the B mod C extra places rotate over the
	// classes from batch to batch. An epoch is floor(N/B) batches.
	SamplerBalanced = "balanced"
	// SamplerShuffled cuts a random permutation into batches of B; the
	// incomplete last batch is dropped.
	SamplerShuffled = "shuffled"
	// SamplerSequential takes the images in order, the last batch possibly
	// short: for evaluation.
	SamplerSequential = "sequential"
)

// Bounds of a loader: views per image, the bytes of one batch, and what
// the batches prepared ahead may hold together by default.
const (
	MaxViews         = 16
	maxBatchBytes    = 1 << 34
	maxPrefetchBytes = 1 << 31
)

// LoaderOptions configures a Loader.
type LoaderOptions struct {
	// BatchSize is the number of images per batch, before views.
	BatchSize int
	// Views is the number of augmented views of each image (2 for
	// contrastive pretraining).
	Views int
	// Sampler is SamplerBalanced, SamplerShuffled or SamplerSequential.
	Sampler string
	// Augment is an augmentation preset (AugmentNone, AugmentDigits,
	// AugmentCIFAR).
	Augment string
	// Seed fixes the sampling and the augmentations.
	Seed uint64
	// Workers is the number of background goroutines; 0 means GOMAXPROCS.
	// The batches do not depend on it.
	Workers int
	// Prefetch is how many batches may be ready ahead of the consumer;
	// 0 means twice the workers, as far as 2 GiB of batches allow.
	Prefetch int
	// Mean and Std normalise each channel; nil means the data set's own
	// (pass the training split's for a test split).
	Mean, Std []float32
}

// Batch is V augmented views of B images: Images holds V*B rows of
// H x W x C float32 values (channels last), view-major (row v*B+i is view
// v of image i).
type Batch struct {
	// Epoch and Index place the batch in the sampling order.
	Epoch, Index int
	// Images holds Views*Size*C*H*W values.
	Images []float32
	// Labels holds the class of each of the Views*Size rows.
	Labels []int
	// Indices holds the data set index of each of the Size images.
	Indices []int
	// Views, Size, C, H, W give the layout of Images.
	Views, Size, C, H, W int
}

// Rows returns the number of image rows, Views*Size.
func (b *Batch) Rows() int { return b.Views * b.Size }

// Loader assembles batches of a data set. Every batch is a pure function of
// the options, the epoch and the batch index, so it can be rebuilt anywhere,
// resumed mid-epoch, and filled by any number of goroutines.
type Loader struct {
	ds      *Dataset
	opt     LoaderOptions
	aug     *Augmenter
	byClass [][]int // image indices of each class that has any

	mu       sync.Mutex
	planFor  int
	planMemo []int
}

// NewLoader checks the options and returns a loader over ds.
func NewLoader(ds *Dataset, opt LoaderOptions) (*Loader, error) {
	if ds.Len() == 0 {
		return nil, fmt.Errorf("%s: no images to load", ds.Name)
	}
	if opt.BatchSize < 1 || opt.Views < 1 || opt.Views > MaxViews {
		return nil, fmt.Errorf("batch size must be at least 1 and views 1 to %d, got %d and %d", MaxViews, opt.BatchSize, opt.Views)
	}
	batchBytes, err := sizes.Check(fmt.Sprintf("%s: a batch of %d images x %d views", ds.Name, opt.BatchSize, opt.Views),
		"bytes", maxBatchBytes, opt.BatchSize, opt.Views, ds.ImageSize(), 4)
	if err != nil {
		return nil, err
	}
	switch opt.Sampler {
	case SamplerBalanced, SamplerShuffled:
		if opt.BatchSize > ds.Len() {
			return nil, fmt.Errorf("%s: batch of %d images is larger than the %d images", ds.Name, opt.BatchSize, ds.Len())
		}
	case SamplerSequential:
	default:
		return nil, fmt.Errorf("unknown sampler %q (want %s, %s or %s)", opt.Sampler, SamplerBalanced, SamplerShuffled, SamplerSequential)
	}
	if opt.Workers < 0 || opt.Workers > sizes.MaxWorkers || opt.Prefetch < 0 || opt.Prefetch > sizes.MaxWorkers {
		return nil, fmt.Errorf("workers and prefetch must be 0 to %d, got %d and %d", sizes.MaxWorkers, opt.Workers, opt.Prefetch)
	}
	if opt.Workers == 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Prefetch == 0 {
		// Twice the workers, within maxPrefetchBytes of batches.
		opt.Prefetch = max(1, min(2*opt.Workers, maxPrefetchBytes/batchBytes))
	}
	if opt.Mean == nil || opt.Std == nil {
		opt.Mean, opt.Std = ds.MeanStd()
	}
	aug, err := NewAugmenter(opt.Augment, ds.C, ds.H, ds.W, opt.Mean, opt.Std)
	if err != nil {
		return nil, err
	}
	l := &Loader{ds: ds, opt: opt, aug: aug, planFor: -1}
	byClass := make([][]int, len(ds.Classes))
	for i, y := range ds.Labels {
		byClass[y] = append(byClass[y], i)
	}
	for _, idx := range byClass {
		if len(idx) > 0 {
			l.byClass = append(l.byClass, idx)
		}
	}
	return l, nil
}

// Options returns the loader's options with the defaults filled in.
func (l *Loader) Options() LoaderOptions { return l.opt }

// BatchesPerEpoch returns the number of batches of an epoch.
func (l *Loader) BatchesPerEpoch() int {
	n, b := l.ds.Len(), l.opt.BatchSize
	if l.opt.Sampler == SamplerSequential {
		return (n + b - 1) / b
	}
	return n / b
}

// mix hashes its arguments into one 64-bit seed (SplitMix64 steps).
func mix(vals ...uint64) uint64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, v := range vals {
		h ^= v + 0x9e3779b97f4a7c15 + h<<6 + h>>2
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}

// Streams of random numbers, kept apart by a tag.
const (
	tagShuffle = iota + 1
	tagClass
	tagOrder
	tagView
	tagSubset
)

func newRand(vals ...uint64) *rand.Rand {
	return rand.New(rand.NewPCG(mix(vals...), mix(append(vals, 0xabcdef)...)))
}

// plan returns the image indices of every batch of an epoch, batch after
// batch; it is memoised for the latest epoch asked for.
func (l *Loader) plan(epoch int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.planFor == epoch {
		return l.planMemo
	}
	seed, e := l.opt.Seed, uint64(epoch)
	n, bs := l.ds.Len(), l.opt.BatchSize
	var p []int
	switch l.opt.Sampler {
	case SamplerSequential:
		p = make([]int, n)
		for i := range p {
			p[i] = i
		}
	case SamplerShuffled:
		p = newRand(seed, tagShuffle, e).Perm(n)[:l.BatchesPerEpoch()*bs]
	case SamplerBalanced:
		p = l.balancedPlan(seed, e)
	}
	l.planFor, l.planMemo = epoch, p
	return p
}

// balancedPlan draws each class's images from its own shuffled stream (a
// fresh permutation each time the class is used up), B/C per batch with the
// extra places rotating, then shuffles the order within each batch.
func (l *Loader) balancedPlan(seed, e uint64) []int {
	nc, bs := len(l.byClass), l.opt.BatchSize
	base, extra := bs/nc, bs%nc
	streams := make([][]int, nc)
	pos := make([]int, nc)
	cycle := make([]uint64, nc)
	take := func(c int) int {
		if pos[c] == len(streams[c]) || streams[c] == nil {
			perm := newRand(seed, tagClass, e, uint64(c), cycle[c]).Perm(len(l.byClass[c]))
			streams[c] = streams[c][:0]
			for _, k := range perm {
				streams[c] = append(streams[c], l.byClass[c][k])
			}
			pos[c] = 0
			cycle[c]++
		}
		pos[c]++
		return streams[c][pos[c]-1]
	}
	nb := l.BatchesPerEpoch()
	p := make([]int, 0, nb*bs)
	for b := range nb {
		start := len(p)
		for c := range nc {
			q := base
			if (c-b*extra%nc+nc)%nc < extra {
				q++
			}
			for range q {
				p = append(p, take(c))
			}
		}
		batch := p[start:]
		newRand(seed, tagOrder, e, uint64(b)).Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	}
	return p
}

// NewBatch allocates a batch with room for a full batch of this loader.
func (l *Loader) NewBatch() *Batch {
	d, v, bs := l.ds, l.opt.Views, l.opt.BatchSize
	return &Batch{Images: make([]float32, v*bs*d.ImageSize()), Labels: make([]int, v*bs), Indices: make([]int, bs),
		Views: v, C: d.C, H: d.H, W: d.W}
}

// Fill computes batch index of epoch into b (from NewBatch): the same
// result wherever and whenever it runs.
func (l *Loader) Fill(epoch, index int, b *Batch) {
	p := l.plan(epoch)
	bs := l.opt.BatchSize
	lo, hi := index*bs, min((index+1)*bs, len(p))
	size := hi - lo
	v, s := l.opt.Views, l.ds.ImageSize()
	b.Epoch, b.Index, b.Size = epoch, index, size
	b.Images, b.Labels, b.Indices = b.Images[:v*size*s], b.Labels[:v*size], b.Indices[:size]
	work := make([]float32, 2*s)
	copy(b.Indices, p[lo:hi])
	for view := range v {
		for i, img := range b.Indices {
			row := view*size + i
			rng := newRand(l.opt.Seed, tagView, uint64(epoch), uint64(index), uint64(i), uint64(view))
			l.aug.Apply(rng, l.ds.Image(img), b.Images[row*s:(row+1)*s], work)
			b.Labels[row] = int(l.ds.Labels[img])
		}
	}
}

// Stream delivers the batches of epoch from batch from onwards, in order,
// filled ahead by background goroutines.
type Stream struct {
	cancel context.CancelFunc
	slots  []chan *Batch
	free   chan *Batch
	next   int
	end    int
	cur    *Batch
	done   sync.WaitGroup
	ctx    context.Context
}

// Stream starts filling the batches of epoch from index from onwards.
// Close it when done, even after the last batch.
func (l *Loader) Stream(ctx context.Context, epoch, from int) *Stream {
	ctx, cancel := context.WithCancel(ctx)
	window := l.opt.Prefetch + 1
	s := &Stream{cancel: cancel, ctx: ctx, next: from, end: l.BatchesPerEpoch(),
		slots: make([]chan *Batch, window), free: make(chan *Batch, window)}
	for i := range window {
		s.slots[i] = make(chan *Batch, 1)
		s.free <- l.NewBatch()
	}
	l.plan(epoch) // once, before the workers ask for it
	type job struct {
		index int
		b     *Batch
	}
	jobs := make(chan job)
	s.done.Add(1)
	go func() { // dispatcher: one buffer per batch in flight
		defer s.done.Done()
		defer close(jobs)
		for i := from; i < s.end; i++ {
			var b *Batch
			select {
			case b = <-s.free:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{i, b}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range min(l.opt.Workers, window) {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			for j := range jobs {
				l.Fill(epoch, j.index, j.b)
				select {
				case s.slots[j.index%window] <- j.b:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return s
}

// Next returns the next batch, valid until the following call to Next or
// Close, or nil at the end of the epoch. It fails only when the context
// ends.
func (s *Stream) Next() (*Batch, error) {
	if s.cur != nil {
		s.free <- s.cur
		s.cur = nil
	}
	if s.next >= s.end {
		return nil, nil
	}
	select {
	case b := <-s.slots[s.next%len(s.slots)]:
		s.next++
		s.cur = b
		return b, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// Close stops the background goroutines and waits for them.
func (s *Stream) Close() {
	s.cancel()
	s.done.Wait()
}

// StratifiedSubset returns k images of d chosen at random (from seed) with
// each class's share as close to its share of d as whole images allow
// (largest remainders), in their original order.
func StratifiedSubset(d *Dataset, k int, seed uint64) (*Dataset, error) {
	n := d.Len()
	if k < 1 || k > n {
		return nil, fmt.Errorf("%s: subset of %d images from %d", d.Name, k, n)
	}
	counts := d.ClassCounts()
	quota := make([]int, len(counts))
	type rem struct {
		class int
		frac  float64
	}
	var rems []rem
	given := 0
	for c, m := range counts {
		exact := float64(k) * float64(m) / float64(n)
		quota[c] = int(exact)
		given += quota[c]
		rems = append(rems, rem{c, exact - float64(quota[c])})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for i := 0; given < k; i++ {
		quota[rems[i].class]++
		given++
	}
	var keep []int
	byClass := make([][]int, len(counts))
	for i, y := range d.Labels {
		byClass[y] = append(byClass[y], i)
	}
	for c, idx := range byClass {
		perm := newRand(seed, tagSubset, uint64(c)).Perm(len(idx))
		for _, p := range perm[:quota[c]] {
			keep = append(keep, idx[p])
		}
	}
	slices.Sort(keep)
	return d.Subset(keep), nil
}

// Samplers lists the sampler names.
func Samplers() string {
	return strings.Join([]string{SamplerBalanced, SamplerShuffled, SamplerSequential}, ", ")
}
