// Package evaluate measures a trained encoder the way the SINCERE authors
// do: nearest-neighbour classification and the target/noise similarity
// margin on L2-normalised embeddings, a linear probe on frozen features,
// and bootstrap confidence intervals for all of them.
package evaluate

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// Neighbours holds, for each query, what the nearest-neighbour metrics and
// the margin need: its K most similar reference rows (similarity and label,
// most similar first) and its largest similarity to a reference of its own
// class (Target) and of another class (Noise).
type Neighbours struct {
	K      int
	Sim    []float32 // queries x K
	Label  []int32   // queries x K
	Target []float32
	Noise  []float32
}

// FindNeighbours compares every query row with every reference row by dot
// product (cosine similarity for L2-normalised rows, d values each) on a
// device, in blocks, keeping the k best of each query. The references are
// uploaded once, in class order, so each block of similarities splits into
// runs of one class; each block is downloaded and merged on the host.
func FindNeighbours(dev kernels.Device, queries []float32, queryLabels []int, refs []float32, refLabels []int, d, k int) (*Neighbours, error) {
	nq, nr := len(queryLabels), len(refLabels)
	if len(queries) != nq*d || len(refs) != nr*d {
		return nil, fmt.Errorf("neighbours: %d query and %d reference values for %d and %d rows of %d", len(queries), len(refs), nq, nr, d)
	}
	if nr < k || k < 1 {
		return nil, fmt.Errorf("neighbours: need at least %d reference rows, have %d", k, nr)
	}
	order := make([]int, nr)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return refLabels[a] - refLabels[b] })
	sorted, labels := make([]float32, nr*d), make([]int, nr)
	for i, o := range order {
		copy(sorted[i*d:(i+1)*d], refs[o*d:(o+1)*d])
		labels[i] = refLabels[o]
	}
	nb := &Neighbours{K: k, Sim: make([]float32, nq*k), Label: make([]int32, nq*k),
		Target: make([]float32, nq), Noise: make([]float32, nq)}
	ninf := float32(math.Inf(-1))
	for i := range nq {
		for j := range k {
			nb.Sim[i*k+j], nb.Label[i*k+j] = ninf, -1
		}
		nb.Target[i], nb.Noise[i] = ninf, ninf
	}
	if nq == 0 {
		return nb, nil
	}
	const qBlock, rBlock = 192, 4096
	arena, err := kernels.NewArena(dev, "neighbours", kernels.ArenaBytes(kernels.FloatBytes(nr*d),
		kernels.FloatBytes(qBlock*d), kernels.FloatBytes(qBlock*rBlock)))
	if err != nil {
		return nil, fmt.Errorf("neighbours: %w", err)
	}
	defer arena.Free()
	refBuf, _ := arena.Take(nr * d)
	qBuf, _ := arena.Take(qBlock * d)
	simBuf, _ := arena.Take(qBlock * rBlock)
	dev.Upload(refBuf, sorted)
	sims := make([]float32, qBlock*rBlock)
	for q0 := 0; q0 < nq; q0 += qBlock {
		q1 := min(q0+qBlock, nq)
		dev.Upload(qBuf.Sub(0, (q1-q0)*d), queries[q0*d:q1*d])
		for r0 := 0; r0 < nr; r0 += rBlock {
			r1 := min(r0+rBlock, nr)
			w := r1 - r0
			out := simBuf.Sub(0, (q1-q0)*w)
			dev.Gemm(false, true, q1-q0, w, d, 1, qBuf, d, refBuf.Sub(r0*d, w*d), d, 0, out, w)
			if err := dev.Download(sims[:(q1-q0)*w], out); err != nil {
				return nil, fmt.Errorf("neighbours: %w", err)
			}
			var wg sync.WaitGroup
			const parts = 4
			for p := range parts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := q0 + (q1-q0)*p/parts; i < q0+(q1-q0)*(p+1)/parts; i++ {
						nb.take(i, sims[(i-q0)*w:(i-q0+1)*w], labels[r0:r1], queryLabels[i])
					}
				}()
			}
			wg.Wait()
		}
	}
	return nb, nil
}

// take merges one query's similarities to a block of references sorted by
// class: a maximum per run of one class, and an insertion into the top k
// for the rare similarity above the current k-th.
func (nb *Neighbours) take(i int, sims []float32, labels []int, own int) {
	k := nb.K
	top, lab := nb.Sim[i*k:(i+1)*k], nb.Label[i*k:(i+1)*k]
	for start := 0; start < len(sims); {
		class := labels[start]
		end := start + 1
		for end < len(sims) && labels[end] == class {
			end++
		}
		run := sims[start:end]
		best, kth := run[0], top[k-1]
		for _, s := range run {
			best = max(best, s)
			if s > kth {
				at := k - 1
				for at > 0 && s > top[at-1] {
					top[at], lab[at] = top[at-1], lab[at-1]
					at--
				}
				top[at], lab[at] = s, int32(class)
				kth = top[k-1]
			}
		}
		if class == own {
			nb.Target[i] = max(nb.Target[i], best)
		} else {
			nb.Noise[i] = max(nb.Noise[i], best)
		}
		start = end
	}
}

// Predict1 returns each query's 1-NN prediction.
func (nb *Neighbours) Predict1() []int {
	out := make([]int, len(nb.Target))
	for i := range out {
		out[i] = int(nb.Label[i*nb.K])
	}
	return out
}

// PredictWeighted returns each query's prediction by its K neighbours,
// each voting for its class with its similarity; ties go to the class of
// the nearer neighbour.
func (nb *Neighbours) PredictWeighted() []int {
	out := make([]int, len(nb.Target))
	k := nb.K
	for i := range out {
		best, bestScore := -1, math.Inf(-1)
		for j := range k {
			c := nb.Label[i*k+j]
			var score float64
			for q := range k {
				if nb.Label[i*k+q] == c {
					score += float64(nb.Sim[i*k+q])
				}
			}
			if score > bestScore {
				best, bestScore = int(c), score
			}
		}
		out[i] = best
	}
	return out
}

// Correct returns 1 where the prediction equals the label, else 0.
func Correct(pred, labels []int) []float64 {
	out := make([]float64, len(pred))
	for i := range pred {
		if pred[i] == labels[i] {
			out[i] = 1
		}
	}
	return out
}

// MeanCosine returns the mean cosine similarity over pairs of distinct rows
// of unit vectors (n rows of d): (|sum z|^2 - n) / (n (n - 1)).
func MeanCosine(z []float32, d int) float64 {
	n := len(z) / d
	if n < 2 {
		return 0
	}
	sum := make([]float64, d)
	var self float64
	for i := range n {
		for j, v := range z[i*d : (i+1)*d] {
			sum[j] += float64(v)
			self += float64(v) * float64(v)
		}
	}
	var sq float64
	for _, v := range sum {
		sq += v * v
	}
	return (sq - self) / float64(n*(n-1))
}
