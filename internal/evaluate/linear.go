package evaluate

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LinearOptions configures the linear probe.
type LinearOptions struct {
	// Epochs over the training features, in shuffled batches of Batch.
	Epochs, Batch int
	// LR is the learning rate of SGD with momentum 0.9; L2 the weight
	// decay on the weights.
	LR, L2 float64
	// Seed fixes the initialisation and the shuffling.
	Seed uint64
}

// Validate reports a bad option by its configuration key.
func (o LinearOptions) Validate() error {
	switch {
	case o.Epochs < 1:
		return fmt.Errorf("probe.linear_epochs: must be at least 1, got %d", o.Epochs)
	case o.Batch < 1:
		return fmt.Errorf("probe.linear_batch: must be at least 1, got %d", o.Batch)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("probe.linear_lr: must be > 0, got %v", o.LR)
	case !(o.L2 >= 0) || math.IsInf(o.L2, 0):
		return fmt.Errorf("probe.linear_l2: must be >= 0, got %v", o.L2)
	}
	return nil
}

// Standardize scales each of the d columns of train to mean 0 and standard
// deviation 1, and the columns of the other matrices by train's statistics;
// the results are float64 copies.
func Standardize(d int, train []float32, others ...[]float32) (out [][]float64) {
	n := len(train) / d
	mean, inv := make([]float64, d), make([]float64, d)
	for i := range n {
		for j := range d {
			mean[j] += float64(train[i*d+j])
		}
	}
	for j := range d {
		mean[j] /= float64(n)
	}
	for i := range n {
		for j := range d {
			v := float64(train[i*d+j]) - mean[j]
			inv[j] += v * v
		}
	}
	for j := range d {
		inv[j] = 1 / math.Sqrt(inv[j]/float64(n)+1e-12)
	}
	for _, m := range append([][]float32{train}, others...) {
		o := make([]float64, len(m))
		for i, v := range m {
			j := i % d
			o[i] = (float64(v) - mean[j]) * inv[j]
		}
		out = append(out, o)
	}
	return out
}

// LinearProbe trains softmax regression (cross entropy, SGD with momentum
// and L2 weight decay) on standardised training features with gorgonia, and
// returns its predictions for the test features. Features are rows of d
// values; labels are in [0, classes).
func LinearProbe(train []float32, trainLabels []int, test []float32, d, classes int, o LinearOptions) ([]int, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	n := len(trainLabels)
	if len(train) != n*d || len(test)%d != 0 || n == 0 {
		return nil, fmt.Errorf("linear probe: %d training values for %d rows of %d", len(train), n, d)
	}
	std := Standardize(d, train, test)
	xs, xt := std[0], std[1]
	batch := min(o.Batch, n)

	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(batch, d), G.WithName("x"))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(batch, classes), G.WithName("y"))
	rng := rand.New(rand.NewPCG(o.Seed, 0x11e4))
	w0 := make([]float64, d*classes)
	for i := range w0 {
		w0[i] = rng.NormFloat64() * math.Sqrt(1/float64(d)) * 0.01
	}
	w := G.NewMatrix(g, tensor.Float64, G.WithShape(d, classes), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(d, classes), tensor.WithBacking(w0))))
	b := G.NewVector(g, tensor.Float64, G.WithShape(classes), G.WithName("b"), G.WithInit(G.Zeroes()))
	logits, err := G.BroadcastAdd(G.Must(G.Mul(x, w)), b, nil, []byte{0})
	if err != nil {
		return nil, err
	}
	logp := G.Must(G.LogSoftMax(logits))
	loss := G.Must(G.Neg(G.Must(G.Mean(G.Must(G.Sum(G.Must(G.HadamardProd(logp, y)), 1))))))
	if _, err := G.Grad(loss, w, b); err != nil {
		return nil, err
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(w, b))
	defer vm.Close()
	solver := G.NewMomentum(G.WithLearnRate(o.LR), G.WithMomentum(0.9), G.WithL2Reg(o.L2))

	xb, yb := make([]float64, batch*d), make([]float64, batch*classes)
	xT := tensor.New(tensor.WithShape(batch, d), tensor.WithBacking(xb))
	yT := tensor.New(tensor.WithShape(batch, classes), tensor.WithBacking(yb))
	steps := n / batch
	for epoch := range o.Epochs {
		perm := rand.New(rand.NewPCG(o.Seed, uint64(epoch))).Perm(n)
		// A cosine schedule over the epochs makes the end insensitive to lr.
		solver = withRate(solver, o.LR*0.5*(1+math.Cos(math.Pi*float64(epoch)/float64(o.Epochs))))
		for s := range steps {
			clear(yb)
			for i := range batch {
				r := perm[s*batch+i]
				copy(xb[i*d:(i+1)*d], xs[r*d:(r+1)*d])
				yb[i*classes+trainLabels[r]] = 1
			}
			if err := G.Let(x, xT); err != nil {
				return nil, err
			}
			if err := G.Let(y, yT); err != nil {
				return nil, err
			}
			if err := vm.RunAll(); err != nil {
				return nil, fmt.Errorf("linear probe: %w", err)
			}
			if v := loss.Value().Data().(float64); math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("linear probe: the loss is %v at epoch %d; lower probe.linear_lr", v, epoch+1)
			}
			if err := solver.Step(G.NodesToValueGrads(G.Nodes{w, b})); err != nil {
				return nil, err
			}
			vm.Reset()
		}
	}
	W := w.Value().Data().([]float64)
	B := b.Value().Data().([]float64)
	nt := len(xt) / d
	pred := make([]int, nt)
	for i := range nt {
		row := xt[i*d : (i+1)*d]
		best, bestScore := 0, math.Inf(-1)
		for c := range classes {
			s := B[c]
			for j, v := range row {
				s += v * W[j*classes+c]
			}
			if s > bestScore {
				best, bestScore = c, s
			}
		}
		pred[i] = best
	}
	return pred, nil
}

// withRate sets the learning rate of a momentum solver, keeping its state.
func withRate(s *G.Momentum, eta float64) *G.Momentum {
	G.WithLearnRate(eta)(s)
	return s
}
