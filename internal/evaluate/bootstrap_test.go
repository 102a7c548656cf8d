package evaluate

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
)

// median64 is the textbook median: sort a copy, take the middle (the mean
// of the two middle values for an even count).
func median64(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// TestMarginIsDifferenceOfMedians pins the margin against a direct float64
// computation from the embeddings: target and noise by brute force over the
// training rows, then median(target) - median(noise). It also shows that
// this is not the median of the per-image differences.
func TestMarginIsDifferenceOfMedians(t *testing.T) {
	target := []float32{0.9, 0.8, 0.7, 0.95, 0.85}
	noise := []float32{0.1, 0.3, 0.2, 0.4, 0.0}
	if m := MarginOf(target, noise)([]int{0, 1, 2, 3, 4}); math.Abs(m-(0.85-0.2)) > 1e-6 {
		t.Errorf("margin %v, want 0.85 - 0.2", m)
	}
	// Differences 0.8 0.5 0.5 0.55 0.85: their median 0.55 is another number.
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ nTrain, nTest, d, classes int }{{700, 301, 8, 3}, {900, 400, 16, 10}, {64, 2, 4, 2}} {
		all, labels := clusters(rng, tc.nTrain+tc.nTest, tc.d, tc.classes, 2)
		refs, refLabels := all[:tc.nTrain*tc.d], labels[:tc.nTrain]
		qs, qLabels := all[tc.nTrain*tc.d:], labels[tc.nTrain:]
		nb, err := FindNeighbours(testDevice(t), qs, qLabels, refs, refLabels, tc.d, 1)
		if err != nil {
			t.Fatal(err)
		}
		tg, ns, diffs := make([]float64, tc.nTest), make([]float64, tc.nTest), make([]float64, tc.nTest)
		for i := range tc.nTest {
			tg[i], ns[i] = math.Inf(-1), math.Inf(-1)
			for r := range tc.nTrain {
				var s float64
				for j := range tc.d {
					s += float64(qs[i*tc.d+j]) * float64(refs[r*tc.d+j])
				}
				if refLabels[r] == qLabels[i] {
					tg[i] = max(tg[i], s)
				} else {
					ns[i] = max(ns[i], s)
				}
			}
			diffs[i] = tg[i] - ns[i]
		}
		want := median64(tg) - median64(ns)
		all0 := make([]int, tc.nTest)
		for i := range all0 {
			all0[i] = i
		}
		got := MarginOf(nb.Target, nb.Noise)(all0)
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%+v: margin %.9f, direct float64 %.9f", tc, got, want)
		}
		if tc.nTest > 2 && math.Abs(median64(diffs)-want) < 1e-9 {
			t.Errorf("%+v: the median of differences equals the difference of medians; the case shows nothing", tc)
		}
	}
}

// runsAround returns per-item 0/1 outcomes of runs whose accuracies are
// the given values (n items each, the wrong items spread evenly).
func runsAround(n int, accs ...float64) [][]float64 {
	var out [][]float64
	for _, a := range accs {
		v := make([]float64, n)
		for i := range v {
			if float64(i%100) < 100*a {
				v[i] = 1
			}
		}
		out = append(out, v)
	}
	return out
}

func meanStats(runs [][]float64) []Statistic {
	var out []Statistic
	for _, v := range runs {
		out = append(out, MeanOf(v))
	}
	return out
}

func TestTwoLevelWidensWhenSeedsDisagree(t *testing.T) {
	const n = 3000
	agree := runsAround(n, 0.75, 0.75, 0.75)
	disagree := runsAround(n, 0.65, 0.75, 0.85)
	reps, err := TwoLevel(n, 1000, 9, [][]Statistic{meanStats(agree), meanStats(disagree)})
	if err != nil {
		t.Fatal(err)
	}
	a, d := reps[0].Interval(), reps[1].Interval()
	if math.Abs(a.Value-0.75) > 1e-12 || math.Abs(d.Value-0.75) > 1e-12 {
		t.Fatalf("estimates %v and %v, want the mean over runs 0.75", a.Value, d.Value)
	}
	// One run's test-set interval: 0.75 +- 1.96 sqrt(0.75 0.25 / 3000) = +- 0.0155.
	single := Bootstrap(n, 1000, 9, MeanOf(agree[0]))
	wa, wd, ws := a.High-a.Low, d.High-d.Low, single.High-single.Low
	t.Logf("widths: one run %.4f, agreeing seeds %.4f, disagreeing seeds %.4f", ws, wa, wd)
	// Seeds that agree: three runs' test resamples average, so the interval is
	// about 1/sqrt(3) of one run's (the runs here are one set of outcomes).
	if wa > ws || wa < 0.4*ws {
		t.Errorf("agreeing seeds: width %.4f against one run's %.4f", wa, ws)
	}
	// Seeds 0.65, 0.75, 0.85: the mean of three draws of them spreads by
	// about 0.1 * sqrt(2/3) / sqrt(3) = 0.047, so the 95% interval spans ~0.18.
	if wd < 4*wa || wd < 0.12 {
		t.Errorf("disagreeing seeds: width %.4f, agreeing %.4f", wd, wa)
	}
	if !(d.Low < 0.7 && d.High > 0.8) {
		t.Errorf("disagreeing seeds: interval %+v should reach past 0.70 and 0.80", d)
	}
}

func TestTwoLevelPairs(t *testing.T) {
	const n = 2000
	a := runsAround(n, 0.80, 0.70, 0.90)
	// b: each run of a with 2% of its items turned wrong, so b is a little
	// worse than a in every run: unpaired, the seeds' spread hides it; paired
	// (the same runs and items drawn for both), it shows.
	b := make([][]float64, len(a))
	for s := range a {
		b[s] = slices.Clone(a[s])
		for i := 0; i < n; i += 50 {
			b[s][i] = 0
		}
	}
	for s := range a {
		for i := range n {
			if a[s][i] == 0 {
				b[s][i] = 0
			}
		}
	}
	reps, err := TwoLevel(n, 1000, 3, [][]Statistic{meanStats(a), meanStats(b), meanStats(a)})
	if err != nil {
		t.Fatal(err)
	}
	self := reps[0].Minus(reps[2]).Interval()
	if self.Value != 0 || self.Low != 0 || self.High != 0 {
		t.Errorf("a statistic minus itself: %+v, want exactly 0", self)
	}
	diff := reps[0].Minus(reps[1]).Interval()
	ia, ib := reps[0].Interval(), reps[1].Interval()
	if !(diff.Low > 0) {
		t.Errorf("paired difference %+v should exclude 0", diff)
	}
	if !(ia.Low < ib.High) {
		t.Errorf("the cells %+v and %+v should overlap (seeds disagree by 10 points)", ia, ib)
	}
	// Deterministic whatever the number of goroutines.
	prev := runtime.GOMAXPROCS(1)
	again, _ := TwoLevel(n, 1000, 3, [][]Statistic{meanStats(a), meanStats(b), meanStats(a)})
	runtime.GOMAXPROCS(prev)
	for j := range reps {
		if !slices.Equal(reps[j].Draws, again[j].Draws) {
			t.Fatalf("statistic %d: other draws with one goroutine", j)
		}
	}
}

// TestTwoLevelResamplesSeeds checks the seed level on runs whose items are
// all alike: each draw is then the mean of three seeds drawn with
// replacement, one of the 10 multisets of {0, 1, 2}.
func TestTwoLevelResamplesSeeds(t *testing.T) {
	const n = 50
	runs := make([][]float64, 3)
	for s := range runs {
		runs[s] = slices.Repeat([]float64{float64(s)}, n)
	}
	reps, err := TwoLevel(n, 2000, 1, [][]Statistic{meanStats(runs)})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float64]int{}
	for _, v := range reps[0].Draws {
		k := math.Round(v * 3)
		if math.Abs(v*3-k) > 1e-9 {
			t.Fatalf("draw %v is not a mean of three seeds", v)
		}
		seen[k]++
	}
	// Sums 0..6 of three draws from {0, 1, 2}; P(sum 0) = 1/27.
	if len(seen) != 7 || seen[0] < 30 || seen[0] > 120 {
		t.Errorf("sums of the drawn seeds: %v", seen)
	}
	if _, err := TwoLevel(n, 10, 1, [][]Statistic{meanStats(runs), meanStats(runs[:2])}); err == nil {
		t.Error("statistics over different numbers of runs were accepted")
	}
	none, _ := TwoLevel(n, 0, 1, [][]Statistic{meanStats(runs)})
	if iv := none[0].Interval(); iv.Value != 1 || iv.Low != 1 || iv.High != 1 {
		t.Errorf("no resamples: %+v", iv)
	}
}

// TestBoundIsDirect pins the bound against a direct float64 computation of
// the authors' expected_bound from the embeddings.
func TestBoundIsDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		n, d, classes int
		tau           float64
	}{{60, 8, 3, 0.1}, {301, 16, 2, 0.2}, {250, 32, 10, 0.05}} {
		z, labels := clusters(rng, c.n, c.d, c.classes, 1.2)
		labels[0] = 99 // alone in its class: no term
		got, err := Bound(z, labels, c.d, c.tau, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !math.IsNaN(got[0]) {
			t.Errorf("%+v: a row without a same-class partner has term %v", c, got[0])
		}
		var sumGot, sumWant float64
		for i := 1; i < c.n; i++ {
			s := func(j int) float64 {
				var dot float64
				for k := range c.d {
					dot += float64(z[i*c.d+k]) * float64(z[j*c.d+k])
				}
				return dot / c.tau
			}
			var negExp float64
			neg, partners := 0, 0
			for k := range c.n {
				if labels[k] != labels[i] {
					negExp += math.Exp(s(k))
					neg++
				}
			}
			var logs float64
			for j := range c.n {
				if j != i && labels[j] == labels[i] {
					logs += math.Log(math.Exp(s(j)) / (math.Exp(s(j)) + negExp))
					partners++
				}
			}
			want := math.Log(float64(neg+1)) + logs/float64(partners)
			if math.Abs(got[i]-want) > 1e-4*math.Max(1, math.Abs(want)) {
				t.Fatalf("%+v row %d: %v, direct %v", c, i, got[i], want)
			}
			sumGot += got[i]
			sumWant += want
		}
		m := MeanOfDefined(got)(func() []int {
			idx := make([]int, c.n)
			for i := range idx {
				idx[i] = i
			}
			return idx
		}())
		if math.Abs(m-sumWant/float64(c.n-1)) > 1e-5*math.Max(1, math.Abs(m)) {
			t.Errorf("%+v: bound %v, direct %v", c, m, sumWant/float64(c.n-1))
		}
	}
}
