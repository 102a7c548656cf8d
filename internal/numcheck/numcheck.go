// Package numcheck measures how far computed numbers are from expected
// ones: the relative errors the tests of the numeric packages assert on,
// and the NaN poison they fill outputs with so that an unwritten element
// fails every bound.
package numcheck

import "math"

// RelErr returns |got - want| / |want|, or |got| when want is zero.
func RelErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// RelL2 returns ||got - want|| / ||want||, or ||got|| when want is zero,
// over the first len(want) values of got.
func RelL2[F float32 | float64](got []F, want []float64) float64 {
	var num, den float64
	for i := range want {
		diff := float64(got[i]) - want[i]
		num += diff * diff
		den += want[i] * want[i]
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// Float64s returns v widened to float64.
func Float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// CentralDiff returns the central finite difference (f(v_i + h) -
// f(v_i - h)) / 2h of f in the value v[i], which it restores afterwards.
// f reads v.
func CentralDiff(v []float32, i int, h float64, f func() float64) float64 {
	old := v[i]
	v[i] = old + float32(h)
	up := f()
	v[i] = old - float32(h)
	down := f()
	v[i] = old
	return (up - down) / (2 * h)
}

// NaNs returns n NaNs: poison for an output that the code under test must
// overwrite, so that an element it leaves unwritten fails any bound.
func NaNs(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}
