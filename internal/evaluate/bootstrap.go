package evaluate

import (
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
// bootstrap resample, or 0..n-1 for the estimate itself).
type Statistic func(idx []int) float64

// Bootstrap estimates stat on all n items and its 95% percentile interval
// over resamples of the items drawn with replacement from seed.
func Bootstrap(n, resamples int, seed uint64, stat Statistic) Interval {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	out := Interval{Value: stat(all)}
	if resamples < 1 || n == 0 {
		out.Low, out.High = out.Value, out.Value
		return out
	}
	rng := rand.New(rand.NewPCG(seed, 0xb007))
	vals := make([]float64, resamples)
	idx := make([]int, n)
	for r := range vals {
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		vals[r] = stat(idx)
	}
	slices.Sort(vals)
	out.Low, out.High = percentile(vals, 0.025), percentile(vals, 0.975)
	return out
}

// percentile interpolates the q-quantile of sorted values.
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

// MarginOf is the statistic "median of target minus median of noise".
func MarginOf(target, noise []float32) Statistic {
	buf := make([]float64, 0, len(target))
	med := func(v []float32, idx []int) float64 {
		buf = buf[:0]
		for _, i := range idx {
			buf = append(buf, float64(v[i]))
		}
		return median(buf)
	}
	return func(idx []int) float64 { return med(target, idx) - med(noise, idx) }
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

// Average is the statistic "mean over several statistics" on the same
// resample: a method's value averaged over seeds.
func Average(stats ...Statistic) Statistic {
	return func(idx []int) float64 {
		var s float64
		for _, st := range stats {
			s += st(idx)
		}
		return s / float64(len(stats))
	}
}

// Difference is the statistic "a minus b" on the same resample: a paired
// comparison.
func Difference(a, b Statistic) Statistic {
	return func(idx []int) float64 { return a(idx) - b(idx) }
}

// BootstrapAll runs Bootstrap for several statistics of the same n items
// at once, one goroutine per statistic up to the cores; each statistic
// must be used by its own call only (MarginOf keeps scratch).
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
