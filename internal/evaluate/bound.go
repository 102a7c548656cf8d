package evaluate

import (
	"math"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
)

// Bound returns, for each row of z (L2-normalised, n rows of d), its term of
// the SINCERE authors' expected_bound (embed_stats.py; DESIGN section 6):
//
//	b_i = log(|Neg(i)| + 1) + mean over same-class j != i of
//	      log( e^(s_ij) / (e^(s_ij) + sum over other-class k of e^(s_ik)) ),
//
// s = z z^T / tau, which is log(|Neg(i)| + 1) minus row i's mean SINCERE
// term; the bound is the mean of b_i. The SINCERE terms come from the fused
// CPU engine (no n x n matrix). Rows without a same-class partner get NaN.
func Bound(z []float32, labels []int, d int, tau float64, workers int) ([]float64, error) {
	e, err := cpu.NewLossEngine(kernels.CPUOptions{Workers: workers})
	if err != nil {
		return nil, err
	}
	terms, err := e.RowLosses(kernels.Params{Loss: kernels.SINCERE, Temperature: tau}, z, len(labels), d, labels)
	if err != nil {
		return nil, err
	}
	count := map[int]int{}
	for _, y := range labels {
		count[y]++
	}
	out := make([]float64, len(labels))
	for i, y := range labels {
		out[i] = math.Log(float64(len(labels)-count[y]+1)) - terms[i]
	}
	return out, nil
}

// MeanOfDefined is the statistic "mean of v over the resample, NaN
// entries left out" (NaN when all are).
func MeanOfDefined(v []float64) Statistic {
	return func(idx []int) float64 {
		var s float64
		n := 0
		for _, i := range idx {
			if x := v[i]; !math.IsNaN(x) {
				s += x
				n++
			}
		}
		if n == 0 {
			return math.NaN()
		}
		return s / float64(n)
	}
}
