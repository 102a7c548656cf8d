package cpu

import (
	"math"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// RowLosses evaluates a loss like Compute and returns, for every row in the
// caller's order, its mean loss term over its positives,
// (1/|P(i)|) sum_p l_ip times the loss's scale; NaN for rows without a
// positive. The loss is the mean of the finite values.
func (c *LossEngine) RowLosses(p kernels.Params, z []float32, n, d int, labels []int) ([]float64, error) {
	sw, _, res, done, err := c.forward(p, z, n, d, labels, nil)
	if err != nil {
		return nil, err
	}
	st := &c.rows
	out := make([]float64, n)
	var terms []float64
	if !done {
		terms = c.terms(sw, p, z)
	}
	for r, i := range st.Order {
		switch {
		case st.Positives[r] == 0:
			out[i] = math.NaN()
		case done: // SINCERE with one class: every term is -eps
			out[i] = res.Loss
		default:
			out[i] = terms[r] * p.Scale()
		}
	}
	return out, nil
}

// PairStats summarises G = dL/dS over the same-class pairs of anchors (see
// kernels.PairStats) with the fused sweeps: sweep 1 for the row statistics,
// then a sweep over the diagonal class bands only (rows sorted by label put
// every same-class pair there), recomputing each similarity tile and forming
// G_ij from row i's statistics. No N x N matrix; the work is about
// sum over classes of n_c^2 d on top of sweep 1. Each row block is summed by
// one worker and the blocks are added in order, so the result does not
// depend on the number of workers.
func (c *LossEngine) PairStats(p kernels.Params, z []float32, n, d int, labels []int) (kernels.PairStats, error) {
	sw, anchors, _, done, err := c.forward(p, z, n, d, labels, nil)
	if err != nil {
		return kernels.PairStats{}, err
	}
	st := &c.rows
	if done { // SINCERE with one class: no negatives, so G vanishes
		var out kernels.PairStats
		for r := range n {
			out.Pairs += int(st.Positives[r])
		}
		return out, nil
	}
	blocks := make([]kernels.PairStats, sw.nb)
	scale, eps := p.Scale(), p.Margin()
	sw.run(func(w *cpuWorker, bi int) {
		t := sw.t
		base := bi * t
		last := min(sw.n, base+t) - 1
		lo := st.ClassStart[st.Label[base]]
		hi := st.ClassStart[st.Label[last]+1]
		acc := &blocks[bi]
		for bj := lo / t; bj <= (hi-1)/t; bj++ {
			tl := sw.similarities(w, bi, bj)
			for r := range tl.nr {
				if st.Positives[base+r] == 0 {
					continue
				}
				pos := float64(st.Positives[base+r])
				ci := scale / (float64(anchors) * pos)
				lse := kernels.LogAddExp(st.LseNeg[base+r], st.LsePos[base+r])
				u := st.LseNeg[base+r] + eps
				row := tl.s[r*tl.lds : r*tl.lds+tl.nc]
				for col, s := range row {
					if tl.yc[col] != tl.yr[r] || (bi == bj && col == r) {
						continue
					}
					var g float64
					if sw.supcon {
						g = ci * (pos*math.Exp(float64(s)-lse) - 1)
					} else {
						g = -ci / (1 + math.Exp(float64(s)-u)) // -c_i sigmoid(u_i - s_ij)
					}
					acc.Pairs++
					acc.Total += math.Abs(g)
					if g > 0 {
						acc.Repelled++
						acc.Repulsive += g
					}
				}
			}
		}
	})
	var out kernels.PairStats
	for _, b := range blocks {
		out.Add(b)
	}
	return out, nil
}
