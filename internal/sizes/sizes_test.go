package sizes

import (
	"math"
	"strings"
	"testing"
)

func TestProduct(t *testing.T) {
	for _, c := range []struct {
		limit   int64
		factors []int
		want    int64
		ok      bool
	}{
		{100, []int{2, 5, 10}, 100, true},
		{99, []int{2, 5, 10}, 0, false},
		{math.MaxInt64, []int{1 << 32, 1 << 32}, 0, false}, // 2^64 wraps to 0 in int64
		{math.MaxInt64, []int{4294967296, 4294967296, 1}, 0, false},
		{1 << 40, []int{0, math.MaxInt}, 0, true},
		{1 << 40, []int{3, -1}, 0, false},
		{1 << 40, nil, 1, true},
	} {
		got, ok := Product(c.limit, c.factors...)
		if got != c.want || ok != c.ok {
			t.Errorf("Product(%d, %v) = %d, %v; want %d, %v", c.limit, c.factors, got, ok, c.want, c.ok)
		}
	}
	if _, err := Check("--n", "values", 1<<30, 4000000000, 128); err == nil || !strings.Contains(err.Error(), "--n: 4000000000 x 128") || !strings.Contains(err.Error(), "1073741824 values") {
		t.Errorf("Check: %v", err)
	}
}
