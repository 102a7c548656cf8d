// Package fused holds the host side of the fused contrastive losses: the
// rows sorted by label (so that positive pairs sit in diagonal bands), which
// every backend uses, and the per-row statistics the CPU engine's sweeps
// accumulate, with the per-row parameters derived from them between the
// sweeps (the CUDA backend keeps its statistics on the device). Meter and
// Grow count the backends' host scratch.
package fused

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// negInf32 is float32 -Inf.
var negInf32 = float32(math.Inf(-1))

// RowStats holds the per-row statistics of one call, indexed by sorted row.
type RowStats struct {
	Label               []int32   // dense class, -1 for padding
	NegMax, PosMax      []float32 // running maxima of the online log-sum-exp
	NegSum, PosSum      []float64 // running sums, relative to the maxima
	SpSum, QSum         []float64 // sweep 2: sum softplus, sum sigmoid
	SumPos              []float64 // SupCon: sum of s_ip over positives
	LseNeg, LsePos      []float64 // log-sum-exp over negatives (M_i) and positives
	U                   []float32 // SINCERE: M_i + eps
	Softmax, Expo, Coef []float32 // backward: a_i, the exponent shift, c_i (GradientParams)
	Positives           []int32   // |P(i)|
	Order               []int     // original row of each sorted row
	ClassStart          []int     // first sorted row of each class, and n at the end

	// Meter, if not nil, counts the arrays' allocations.
	Meter *Meter

	classSum []float64 // scratch of PositiveSimilarities
}

// Begin sorts the rows by label and settles the calls that need no sweeps:
// no anchors (an error) and, for SINCERE and eps-SupInfoNCE, a single class
// (no negatives anywhere: D_ip = s_ip - eps, so every term is -eps and the
// gradient vanishes). done says whether res and err are the answer.
func (st *RowStats) Begin(p kernels.Params, labels []int, np int, grad []float32) (anchors int, res kernels.Result, done bool, err error) {
	anchors, classes := st.SortLabels(labels, np)
	switch {
	case anchors == 0:
		return 0, kernels.Result{}, true, kernels.ErrNoAnchors
	case p.Loss != kernels.SupCon && classes == 1:
		if grad != nil {
			clear(grad)
		}
		return anchors, kernels.Result{Loss: -p.Margin(), Anchors: anchors}, true, nil
	}
	return anchors, kernels.Result{}, false, nil
}

// GradientParams fills the per-row parameters of the backward tile kernels
// (see tileOps.gradSupCon and gradSincere). Rows that are not anchors, and
// padding rows, get a zero coefficient and a -Inf exponent, so that their
// G_ij vanish.
func (st *RowStats) GradientParams(supcon bool, n, anchors int, scale float64) {
	for r := range st.Coef {
		if r >= n {
			st.U[r] = 0
		}
		if r >= n || st.Positives[r] == 0 {
			st.Softmax[r], st.Expo[r], st.Coef[r] = 0, negInf32, 0
			continue
		}
		ci := scale / float64(anchors) / float64(st.Positives[r]) // c_i, with the scale
		st.Coef[r] = float32(ci)
		if supcon {
			// G_ij = a_i exp(s_ij - L_i) - c_i [j in P(i)], a_i = c_i |P(i)|
			st.Softmax[r] = float32(scale / float64(anchors))
			st.Expo[r] = float32(-kernels.LogAddExp(st.LseNeg[r], st.LsePos[r]))
		} else {
			// G_in = c_i exp(s_in + W_i), W_i = log(sum_p exp(M_i - D_ip)) - M_i;
			// G_ip = -c_i sigmoid(u_i - s_ip), u_i = M_i + eps (set by sweep 2)
			st.Expo[r] = float32(math.Log(st.QSum[r]) - st.LseNeg[r])
		}
	}
}

// LSE turns an online log-sum-exp state into its value.
func LSE(m float32, sum float64) float64 {
	if sum == 0 || math.IsInf(float64(m), -1) {
		return math.Inf(-1)
	}
	return float64(m) + math.Log(sum)
}

// SortLabels orders the rows by label, fills order, label (padded with -1 up
// to np rows), positives and classStart, and returns |A| and the number of
// classes.
func (st *RowStats) SortLabels(labels []int, np int) (anchors, classes int) {
	n := len(labels)
	st.Order = Grow(st.Meter, st.Order, n)
	st.orderByLabel(labels)
	st.Label = Grow(st.Meter, st.Label, np)
	for r := n; r < np; r++ {
		st.Label[r] = -1
	}
	st.Positives = Grow(st.Meter, st.Positives, n)
	st.ClassStart = st.ClassStart[:0]
	for k, i := range st.Order {
		if k == 0 || labels[i] != labels[st.Order[k-1]] {
			st.ClassStart = append(st.ClassStart, k)
		}
		st.Label[k] = int32(len(st.ClassStart) - 1)
	}
	st.ClassStart = append(st.ClassStart, n)
	classes = len(st.ClassStart) - 1
	for cl := range classes {
		size := st.ClassStart[cl+1] - st.ClassStart[cl]
		for k := st.ClassStart[cl]; k < st.ClassStart[cl+1]; k++ {
			st.Positives[k] = int32(size - 1)
		}
		if size > 1 {
			anchors += size
		}
	}
	return anchors, classes
}

// orderByLabel sets order to the rows sorted by label, ties by row: a
// counting sort when the labels span a small range (class indices), else a
// comparison sort. Both give the same order.
func (st *RowStats) orderByLabel(labels []int) {
	n := len(labels)
	if n == 0 {
		return
	}
	lo, hi := slices.Min(labels), slices.Max(labels)
	if span := uint64(hi) - uint64(lo); hi >= lo && span < uint64(4*n+1024) {
		count := make([]int, span+2)
		for _, y := range labels {
			count[y-lo+1]++
		}
		for k := 1; k < len(count); k++ {
			count[k] += count[k-1]
		}
		for i, y := range labels {
			st.Order[count[y-lo]] = i
			count[y-lo]++
		}
		return
	}
	for i := range n {
		st.Order[i] = i
	}
	slices.SortFunc(st.Order, func(a, b int) int {
		return cmp.Or(cmp.Compare(labels[a], labels[b]), cmp.Compare(a, b))
	})
}

// Resize sizes the per-row arrays for np rows and resets the running
// statistics.
func (st *RowStats) Resize(np int) {
	for _, a := range []*[]float32{&st.NegMax, &st.PosMax, &st.U, &st.Softmax, &st.Expo, &st.Coef} {
		*a = Grow(st.Meter, *a, np)
	}
	for _, a := range []*[]float64{&st.NegSum, &st.PosSum, &st.SpSum, &st.QSum, &st.LseNeg, &st.LsePos, &st.SumPos} {
		*a = Grow(st.Meter, *a, np)
		clear(*a)
	}
	for r := range np {
		st.NegMax[r], st.PosMax[r] = negInf32, negInf32
	}
}

// PositiveSimilarities returns, for every sorted row r, sum over its
// positives p of s_rp = z_r . (sum of its class's rows - z_r) / tau, in float64.
func (st *RowStats) PositiveSimilarities(z []float32, d int, tau float64) []float64 {
	n := len(st.Order)
	out := st.SumPos[:n]
	st.classSum = Grow(st.Meter, st.classSum, d)
	sum := st.classSum
	for cl := range len(st.ClassStart) - 1 {
		lo, hi := st.ClassStart[cl], st.ClassStart[cl+1]
		if hi-lo < 2 {
			out[lo] = 0
			continue
		}
		clear(sum)
		for k := lo; k < hi; k++ {
			row := z[st.Order[k]*d : st.Order[k]*d+d]
			for j, v := range row {
				sum[j] += float64(v)
			}
		}
		for k := lo; k < hi; k++ {
			row := z[st.Order[k]*d : st.Order[k]*d+d]
			var dot float64
			for j, v := range row {
				dot += float64(v) * (sum[j] - float64(v))
			}
			out[k] = dot / tau
		}
	}
	return out
}

// Meter counts the scratch memory a backend allocates on the host, so that
// a device can report (and a test can check) that steady-state work
// allocates nothing. It is safe for concurrent use; a nil Meter counts
// nothing.
type Meter struct {
	inUse, peak, allocs atomic.Int64
}

// Add records an allocation of bytes (a negative count gives memory back).
func (m *Meter) Add(bytes int64) {
	if m == nil {
		return
	}
	if bytes > 0 {
		m.allocs.Add(1)
	}
	v := m.inUse.Add(bytes)
	for {
		p := m.peak.Load()
		if v <= p || m.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// Read returns the bytes held now, the peak and the number of allocations.
func (m *Meter) Read() (inUse, peak, allocs int64) {
	if m == nil {
		return 0, 0, 0
	}
	return m.inUse.Load(), m.peak.Load(), m.allocs.Load()
}

// Grow returns a slice of length n, reusing s's memory when it is large
// enough; a new allocation is counted by m (which may be nil).
func Grow[T any](m *Meter, s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	size := int64(unsafe.Sizeof(*new(T)))
	m.Add(size * int64(n-cap(s)))
	return make([]T, n)
}
