package fused

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestOrderByLabel checks that the counting sort and the comparison sort
// give the same order: by label, ties by row.
func TestOrderByLabel(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct {
		n, lo, span int
	}{{1, 0, 1}, {50, 0, 3}, {1000, -20, 40}, {300, 1 << 40, 10}, {200, 0, 1 << 30}, {100, math.MinInt, 0}} {
		labels := make([]int, c.n)
		for i := range labels {
			labels[i] = c.lo
			if c.span > 0 {
				labels[i] += rng.IntN(c.span)
			}
		}
		if c.lo == math.MinInt {
			labels[7] = math.MaxInt // a span no counting sort can take
		}
		var st RowStats
		st.Order = make([]int, c.n)
		st.orderByLabel(labels)
		for k := 1; k < c.n; k++ {
			a, b := st.Order[k-1], st.Order[k]
			if labels[a] > labels[b] || labels[a] == labels[b] && a >= b {
				t.Fatalf("n=%d lo=%d span=%d: rows %d (label %d) then %d (label %d)", c.n, c.lo, c.span, a, labels[a], b, labels[b])
			}
		}
		seen := make([]bool, c.n)
		for _, i := range st.Order {
			if seen[i] {
				t.Fatalf("row %d twice", i)
			}
			seen[i] = true
		}
	}
}
