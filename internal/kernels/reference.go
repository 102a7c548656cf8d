package kernels

import "math"

// Reference computes a loss and its gradient dL/dZ in float64, straight from
// the formulas of DESIGN section 2, with the full N x N similarity matrix. It
// is the oracle the fused engines are tested against: slow, plain and
// independent of their tiling, sorting and online statistics.
func Reference(p Params, z []float64, n, d int, labels []int) (float64, []float64, int, error) {
	if err := p.Validate(); err != nil {
		return 0, nil, 0, err
	}
	if err := CheckInputs(z, n, d, labels); err != nil {
		return 0, nil, 0, err
	}
	tau := p.Temperature
	s := make([]float64, n*n)
	for i := range n {
		for j := range n {
			var dot float64
			for k := range d {
				dot += z[i*d+k] * z[j*d+k]
			}
			s[i*n+j] = dot / tau
		}
	}
	positives, anchors := countPositives(labels)
	if anchors == 0 {
		return 0, nil, 0, ErrNoAnchors
	}

	// g[i*n+j] = dL/ds_ij before the scale factor.
	g := make([]float64, n*n)
	var total float64
	for i := range n {
		if positives[i] > 0 {
			total += anchorTerms(p, s[i*n:(i+1)*n], i, labels, positives[i], anchors, g[i*n:(i+1)*n])
		}
	}
	scale := p.Scale()
	grad := make([]float64, n*d)
	for i := range n {
		for j := range n {
			h := (g[i*n+j] + g[j*n+i]) * scale / tau
			if h == 0 {
				continue
			}
			for k := range d {
				grad[i*d+k] += h * z[j*d+k]
			}
		}
	}
	return total * scale, grad, anchors, nil
}

// anchorTerms evaluates the terms of anchor i, whose similarities to every
// row are row and who has positives > 0 positives: it sets grow[a] to
// dL/ds_ia for every a != i and returns the terms' share of the loss, both
// before the scale factor.
func anchorTerms(p Params, row []float64, i int, labels []int, positives, anchors int, grow []float64) float64 {
	n := len(row)
	c := 1 / float64(anchors*positives)
	var li float64
	switch p.Loss {
	case SupCon:
		lse := logSumExp(n, func(a int) (float64, bool) { return row[a], a != i })
		for a := range n {
			if a == i {
				continue
			}
			grow[a] = float64(positives) * math.Exp(row[a]-lse)
			if labels[a] == labels[i] {
				li += lse - row[a]
				grow[a]--
			}
			grow[a] *= c
		}
	default: // SINCERE, eps-SupInfoNCE
		eps := p.Margin()
		m := logSumExp(n, func(a int) (float64, bool) { return row[a], labels[a] != labels[i] })
		w := math.Inf(-1) // W_i = LSE over positives of -D_ip
		for a := range n {
			if a == i || labels[a] != labels[i] {
				continue
			}
			dip := LogAddExp(row[a]-eps, m)
			li += dip - row[a]
			grow[a] = -c * math.Exp(m-dip)
			w = LogAddExp(w, -dip)
		}
		for a := range n {
			if labels[a] != labels[i] {
				grow[a] = c * math.Exp(row[a]+w)
			}
		}
	}
	return li * c
}

// logSumExp returns log sum_{a < n, keep(a)} exp(v(a)), -Inf for an empty set.
func logSumExp(n int, v func(a int) (float64, bool)) float64 {
	m := math.Inf(-1)
	for a := range n {
		if x, ok := v(a); ok && x > m {
			m = x
		}
	}
	if math.IsInf(m, -1) {
		return m
	}
	var sum float64
	for a := range n {
		if x, ok := v(a); ok {
			sum += math.Exp(x - m)
		}
	}
	return m + math.Log(sum)
}

// LogAddExp returns log(exp(a) + exp(b)) without overflow; -Inf when both are.
func LogAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(a, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// countPositives returns |P(i)| for every row, by brute force, and |A|.
func countPositives(labels []int) ([]int, int) {
	n := len(labels)
	positives, anchors := make([]int, n), 0
	for i := range n {
		for j := range n {
			if j != i && labels[j] == labels[i] {
				positives[i]++
			}
		}
		if positives[i] > 0 {
			anchors++
		}
	}
	return positives, anchors
}
