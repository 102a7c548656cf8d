// Package oracle builds sincere's losses and layers as gorgonia expression
// graphs in float64, so that tests can check the hand-written forward and
// backward passes against gorgonia's symbolic differentiation: an oracle
// that shares no code with what it checks. Only tests import it.
package oracle

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Matrix returns a constant n x m node.
func Matrix(g *G.ExprGraph, n, m int, v []float64) *G.Node {
	return G.NewConstant(tensor.New(tensor.WithShape(n, m), tensor.WithBacking(v)))
}

// Var returns a float64 input node of the given shape and values, which
// gradients can be taken with respect to.
func Var(g *G.ExprGraph, name string, v []float64, shape ...int) *G.Node {
	return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), v...)))))
}

// ContrastiveLoss returns the SupCon ("supcon") or SINCERE ("sincere") loss
// of the rows of z (n x d, already normalised as the caller wants) with
// temperature tau: the full similarity matrix, masks as constants, the
// mean over anchors of the mean over positives.
func ContrastiveLoss(z *G.Node, labels []int, loss string, tau float64) (*G.Node, error) {
	g := z.Graph()
	n := len(labels)
	notSelf, neg, wpos := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
	rowWeight, positives := make([]float64, n), make([]int, n)
	anchors := 0
	for i := range n {
		for j := range n {
			if i != j {
				notSelf[i*n+j] = 1
				if labels[i] == labels[j] {
					positives[i]++
				}
			}
			if labels[i] != labels[j] {
				neg[i*n+j] = 1
			}
		}
		if positives[i] > 0 {
			anchors++
		}
	}
	if anchors == 0 {
		return nil, fmt.Errorf("no anchors")
	}
	for i := range n {
		if positives[i] == 0 {
			continue
		}
		w := 1 / float64(anchors*positives[i])
		rowWeight[i] = w * float64(positives[i])
		for j := range n {
			if i != j && labels[i] == labels[j] {
				wpos[i*n+j] = w
			}
		}
	}
	zt, err := G.Transpose(z)
	if err != nil {
		return nil, err
	}
	s := G.Must(G.Mul(G.Must(G.Mul(z, zt)), G.NewConstant(1/tau)))
	e := G.Must(G.Exp(s))
	wp := Matrix(g, n, n, wpos)
	switch loss {
	case "supcon":
		denom := G.Must(G.Sum(G.Must(G.HadamardProd(e, Matrix(g, n, n, notSelf))), 1))
		rw := G.NewConstant(tensor.New(tensor.WithShape(n), tensor.WithBacking(rowWeight)))
		t1 := G.Must(G.Sum(G.Must(G.HadamardProd(G.Must(G.Log(denom)), rw))))
		t2 := G.Must(G.Sum(G.Must(G.HadamardProd(s, wp))))
		return G.Sub(t1, t2)
	case "sincere":
		negSum := G.Must(G.Sum(G.Must(G.HadamardProd(e, Matrix(g, n, n, neg))), 1))
		negCol := G.Must(G.Reshape(negSum, tensor.Shape{n, 1}))
		d := G.Must(G.Log(G.Must(G.BroadcastAdd(e, negCol, nil, []byte{1}))))
		return G.Sum(G.Must(G.HadamardProd(G.Must(G.Sub(d, s)), wp)))
	}
	return nil, fmt.Errorf("no gorgonia graph for loss %q", loss)
}

// Run differentiates cost with respect to wrt, runs the graph and returns
// the cost and the gradients, in the order of wrt.
func Run(cost *G.Node, wrt ...*G.Node) (float64, [][]float64, error) {
	if _, err := G.Grad(cost, wrt...); err != nil {
		return 0, nil, err
	}
	m := G.NewTapeMachine(cost.Graph(), G.BindDualValues(wrt...))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return 0, nil, err
	}
	grads := make([][]float64, len(wrt))
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			return 0, nil, fmt.Errorf("%s: %w", n.Name(), err)
		}
		grads[i] = append([]float64(nil), gv.Data().([]float64)...)
	}
	return cost.Value().Data().(float64), grads, nil
}

// Conv2D is a convolution of x (NCHW) with w (K x C x R x S), stride and
// padding, without bias.
func Conv2D(x, w *G.Node, r, stride, pad int) (*G.Node, error) {
	return G.Conv2d(x, w, tensor.Shape{r, r}, []int{pad, pad}, []int{stride, stride}, []int{1, 1})
}

// BatchNorm normalises each channel of x (NCHW, or N x F) with its batch
// mean and biased variance, then scales by gamma and shifts by beta: the
// training-mode forward pass, built from elementary operations.
func BatchNorm(x, gamma, beta *G.Node, eps float64) (*G.Node, error) {
	shape := x.Shape()
	var flat *G.Node
	var err error
	if len(shape) == 4 {
		n, c, h, w := shape[0], shape[1], shape[2], shape[3]
		t, err := G.Transpose(x, 0, 2, 3, 1)
		if err != nil {
			return nil, err
		}
		if flat, err = G.Reshape(t, tensor.Shape{n * h * w, c}); err != nil {
			return nil, err
		}
	} else {
		flat = x
	}
	mean := G.Must(G.Mean(flat, 0))
	centred := G.Must(G.BroadcastSub(flat, mean, nil, []byte{0}))
	variance := G.Must(G.Mean(G.Must(G.Square(centred)), 0))
	std := G.Must(G.Sqrt(G.Must(G.Add(variance, G.NewConstant(eps)))))
	y := G.Must(G.BroadcastHadamardDiv(centred, std, nil, []byte{0}))
	y = G.Must(G.BroadcastHadamardProd(y, gamma, nil, []byte{0}))
	y = G.Must(G.BroadcastAdd(y, beta, nil, []byte{0}))
	if len(shape) == 4 {
		n, c, h, w := shape[0], shape[1], shape[2], shape[3]
		if y, err = G.Reshape(y, tensor.Shape{n, h, w, c}); err != nil {
			return nil, err
		}
		return G.Transpose(y, 0, 3, 1, 2)
	}
	return y, nil
}

// Linear is x w^T (+ b), x being N x In (images are flattened).
func Linear(x, w, b *G.Node) (*G.Node, error) {
	if len(x.Shape()) != 2 {
		n := x.Shape()[0]
		var err error
		if x, err = G.Reshape(x, tensor.Shape{n, x.Shape().TotalSize() / n}); err != nil {
			return nil, err
		}
	}
	wt, err := G.Transpose(w)
	if err != nil {
		return nil, err
	}
	y, err := G.Mul(x, wt)
	if err != nil || b == nil {
		return y, err
	}
	return G.BroadcastAdd(y, b, nil, []byte{0})
}

// GlobalAvgPool averages each channel plane of x (NCHW) to N x C.
func GlobalAvgPool(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	r, err := G.Reshape(x, tensor.Shape{s[0], s[1], s[2] * s[3]})
	if err != nil {
		return nil, err
	}
	return G.Mean(r, 2)
}

// L2Normalize divides each row of x (N x F) by its norm.
func L2Normalize(x *G.Node) (*G.Node, error) {
	n := x.Shape()[0]
	norms := G.Must(G.Sqrt(G.Must(G.Sum(G.Must(G.Square(x)), 1))))
	col := G.Must(G.Reshape(norms, tensor.Shape{n, 1}))
	return G.BroadcastHadamardDiv(x, col, nil, []byte{1})
}

// Dot returns sum(x * r) for a constant r of x's shape: a scalar whose
// gradient with respect to x is r.
func Dot(x *G.Node, r []float64) (*G.Node, error) {
	c := G.NewConstant(tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(r)))
	p, err := G.HadamardProd(x, c)
	if err != nil {
		return nil, err
	}
	return G.Sum(p)
}
