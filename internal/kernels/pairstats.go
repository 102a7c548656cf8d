package kernels

import "math"

// PairStats summarises G = dL/dS, the gradient of a loss with respect to
// the similarities s_ij = z_i . z_j / tau, over the same-class pairs (i, j),
// i != j, of the anchors: the pairs the loss pulls together (G_ij < 0) or,
// for SupCon, may push apart (G_ij > 0, DESIGN section 6: intra-class
// repulsion). G_ij is the derivative of anchor i's terms only, as the
// formulas of DESIGN section 2 write it; the gradient of the symmetric
// pair is G_ij + G_ji.
type PairStats struct {
	// Pairs is the number of ordered same-class pairs of anchors.
	Pairs int
	// Repelled counts the pairs with G_ij > 0.
	Repelled int
	// Repulsive is the sum of max(G_ij, 0), Total the sum of |G_ij|.
	Repulsive, Total float64
}

// Add accumulates another batch's statistics.
func (s *PairStats) Add(o PairStats) {
	s.Pairs += o.Pairs
	s.Repelled += o.Repelled
	s.Repulsive += o.Repulsive
	s.Total += o.Total
}

// RepelledFraction is Repelled / Pairs (0 without pairs).
func (s PairStats) RepelledFraction() float64 {
	if s.Pairs == 0 {
		return 0
	}
	return float64(s.Repelled) / float64(s.Pairs)
}

// RepulsiveShare is Repulsive / Total: the share of the same-class
// gradient mass that pushes apart (0 when there is none).
func (s PairStats) RepulsiveShare() float64 {
	if s.Total == 0 {
		return 0
	}
	return s.Repulsive / s.Total
}

// ReferencePairStats computes PairStats in float64 from the full similarity
// matrix, straight from the gradient formulas of DESIGN section 2 (the G_ij
// of Reference, row by row): the oracle of the fused pair-statistics pass.
func ReferencePairStats(p Params, z []float64, n, d int, labels []int) (PairStats, error) {
	if err := p.Validate(); err != nil {
		return PairStats{}, err
	}
	if err := CheckInputs(z, n, d, labels); err != nil {
		return PairStats{}, err
	}
	positives, anchors := countPositives(labels)
	if anchors == 0 {
		return PairStats{}, ErrNoAnchors
	}
	row, grow := make([]float64, n), make([]float64, n)
	var st PairStats
	scale := p.Scale()
	for i := range n {
		if positives[i] == 0 {
			continue
		}
		for j := range n {
			var dot float64
			for k := range d {
				dot += z[i*d+k] * z[j*d+k]
			}
			row[j] = dot / p.Temperature
		}
		anchorTerms(p, row, i, labels, positives[i], anchors, grow)
		for j := range n {
			if j == i || labels[j] != labels[i] {
				continue
			}
			g := grow[j] * scale
			st.Pairs++
			st.Total += math.Abs(g)
			if g > 0 {
				st.Repelled++
				st.Repulsive += g
			}
		}
	}
	return st, nil
}
