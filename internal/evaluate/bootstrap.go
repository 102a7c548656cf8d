package evaluate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// Interval is an estimate with its 95% bootstrap interval.
type Interval struct {
	Value, Low, High float64
}

// Statistic computes a value from the items at the given indices (a
// bootstrap resample, or 0..n-1 for the estimate itself). The statistics of
// this package are safe for concurrent use.
type Statistic func(idx []int) float64

// Bootstrap estimates stat on all n items and its 95% percentile interval
// over resamples of the items drawn with replacement from seed: the SINCERE
// authors' per-run protocol (bootstrap_metric in their bootstrap_lin_acc.py,
// 1000 resamples of the test set).
func Bootstrap(n, resamples int, seed uint64, stat Statistic) Interval {
	r := Replicates{Value: stat(indices(n))}
	if resamples < 1 || n == 0 {
		return r.Interval()
	}
	rng := rand.New(rand.NewPCG(seed, 0xb007))
	r.Draws = make([]float64, resamples)
	idx := make([]int, n)
	for k := range r.Draws {
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		r.Draws[k] = stat(idx)
	}
	return r.Interval()
}

// indices returns 0..n-1: every item, for the estimate itself.
func indices(n int) []int {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}

// percentile interpolates the q-quantile of sorted values (as numpy's and
// torch's default "linear" quantile does).
func percentile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// MeanOf is the statistic "mean of v over the resample".
func MeanOf(v []float64) Statistic {
	return func(idx []int) float64 {
		var s float64
		for _, i := range idx {
			s += v[i]
		}
		return s / float64(len(idx))
	}
}

// MarginOf is the SINCERE authors' margin (sim_median_margin in their
// bootstrap_margin.py) without their absolute value: the median over the
// resample of target minus the median over the resample of noise. It is a
// difference of two medians, not the median of per-item differences.
func MarginOf(target, noise []float32) Statistic {
	pool := sync.Pool{New: func() any { b := make([]float64, 0, len(target)); return &b }}
	med := func(buf []float64, v []float32, idx []int) float64 {
		buf = buf[:0]
		for _, i := range idx {
			buf = append(buf, float64(v[i]))
		}
		return median(buf)
	}
	return func(idx []int) float64 {
		b := pool.Get().(*[]float64)
		defer pool.Put(b)
		return med(*b, target, idx) - med(*b, noise, idx)
	}
}

// median of v (reordered in place).
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	m := selectK(v, n/2)
	if n%2 == 1 {
		return m
	}
	return (slices.Max(v[:n/2]) + m) / 2
}

// selectK places the k-th smallest value at v[k] (and smaller ones before
// it) and returns it: Hoare's quickselect with the middle pivot.
func selectK(v []float64, k int) float64 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		p := v[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for v[i] < p {
				i++
			}
			for v[j] > p {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}

// BootstrapAll runs Bootstrap for several statistics of the same n items
// at once (the same resamples for each), one goroutine per statistic up to
// the cores.
func BootstrapAll(n, resamples int, seed uint64, stats []Statistic) []Interval {
	out := make([]Interval, len(stats))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, st := range stats {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			out[i] = Bootstrap(n, resamples, seed, st)
			<-sem
		}()
	}
	wg.Wait()
	return out
}

// Replicates are an estimate and its bootstrap values, one per resample in
// resample order. Replicates drawn together (one TwoLevel call) share their
// resamples, so subtracting them draw by draw gives a paired difference.
type Replicates struct {
	Value float64
	Draws []float64
}

// Interval returns the estimate with the 2.5 and 97.5 percentiles of the
// draws (the estimate alone when there are none).
func (r Replicates) Interval() Interval {
	if len(r.Draws) == 0 {
		return Interval{r.Value, r.Value, r.Value}
	}
	s := slices.Clone(r.Draws)
	slices.Sort(s)
	return Interval{Value: r.Value, Low: percentile(s, 0.025), High: percentile(s, 0.975)}
}

// Minus is the paired difference r - o, draw by draw; both must come from
// the same resamples.
func (r Replicates) Minus(o Replicates) Replicates {
	d := Replicates{Value: r.Value - o.Value, Draws: make([]float64, len(r.Draws))}
	for i := range d.Draws {
		d.Draws[i] = r.Draws[i] - o.Draws[i]
	}
	return d
}

// TwoLevel bootstraps statistics that average over runs (a method trained
// with several seeds) evaluated on the same n test items, so that an
// interval covers both sources of randomness: training and the test set.
// Each resample draws as many runs as there are, with replacement, then for
// each drawn run n test items with replacement, evaluates that run's
// statistic on its items, and averages over the drawn runs.
//
// stats[j][s] is statistic j evaluated on run s. Every j has the same runs
// and sees the same resamples (the same drawn runs by position, the same
// drawn items within each), so the replicates of two statistics pair. The
// estimate of j is the mean over runs of stats[j][s] on all items. Resample
// r depends on seed and r only, whatever the number of goroutines.
func TwoLevel(n, resamples int, seed uint64, stats [][]Statistic) ([]Replicates, error) {
	if len(stats) == 0 {
		return nil, nil
	}
	runs := len(stats[0])
	for j, st := range stats {
		if len(st) != runs || runs == 0 {
			return nil, fmt.Errorf("two-level bootstrap: statistic %d has %d runs, statistic 0 has %d", j, len(st), runs)
		}
	}
	all := indices(n)
	out := make([]Replicates, len(stats))
	for j, st := range stats {
		var s float64
		for _, f := range st {
			s += f(all)
		}
		out[j].Value = s / float64(runs)
	}
	if resamples < 1 || n == 0 {
		return out, nil
	}
	for j := range out {
		out[j].Draws = make([]float64, resamples)
	}
	workers := min(runtime.GOMAXPROCS(0), resamples)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := make([]int, n)
			sums := make([]float64, len(stats))
			for r := w; r < resamples; r += workers {
				rng := rand.New(rand.NewPCG(seed, 0x2b00+uint64(r)))
				clear(sums)
				for range runs {
					s := rng.IntN(runs)
					for i := range idx {
						idx[i] = rng.IntN(n)
					}
					for j, st := range stats {
						sums[j] += st[s](idx)
					}
				}
				for j := range stats {
					out[j].Draws[r] = sums[j] / float64(runs)
				}
			}
		}()
	}
	wg.Wait()
	return out, nil
}
