package cpu

import (
	"math"
	"math/rand/v2"
)

func randomVec(rng *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float32()
	}
	return v
}

// closeTo reports whether got is within rel of want, counting values below
// abs as equal (the vector exp flushes results under 1e-38 to 0).
func closeTo(got, want float32, rel, abs float64) bool {
	g, w := float64(got), float64(want)
	if math.IsInf(w, 0) || math.IsNaN(w) {
		return g == w
	}
	return math.Abs(g-w) <= rel*math.Abs(w)+abs
}
