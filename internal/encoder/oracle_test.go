package encoder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/numcheck"
	"github.com/sincere-ml/sincere/internal/oracle"
)

func cpu(t *testing.T) kernels.Device {
	t.Helper()
	d, err := kernels.NewCPUDevice(kernels.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func randVec(rng *rand.Rand, n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return v
}

// graphOf builds the gorgonia graph of one of this package's layers on x,
// with a variable node per parameter (recorded in vars), in training mode.
// Images are NCHW in the graph (gorgonia's convolution wants them so) and
// channels-last here; toGraph and fromGraph convert at the ends.
func graphOf(t *testing.T, dev kernels.Device, l Layer, x *G.Node, vars map[*Param]*G.Node) *G.Node {
	t.Helper()
	v := func(p *Param) *G.Node {
		n := oracle.Var(x.Graph(), p.Name, numcheck.Float64s(download(dev, p.W)), p.Shape...)
		vars[p] = n
		return n
	}
	var y *G.Node
	var err error
	switch l := l.(type) {
	case *Conv2D:
		// Filters are R x S x C x K here, K x C x R x S in gorgonia.
		w := G.Must(G.Transpose(v(l.W), 3, 2, 0, 1))
		y, err = oracle.Conv2D(x, w, l.R, l.Stride, l.Pad)
	case *BatchNorm:
		if y, err = oracle.BatchNorm(x, v(l.Gamma), v(l.Beta), bnEps); err == nil && l.ReLU {
			y, err = G.Rectify(y)
		}
	case *ReLU:
		y, err = G.Rectify(x)
	case *Linear:
		var b *G.Node
		if l.B != nil {
			b = v(l.B)
		}
		if len(x.Shape()) == 4 { // flatten in this package's order, channels last
			x = G.Must(G.Transpose(x, 0, 2, 3, 1))
		}
		y, err = oracle.Linear(x, v(l.W), b)
	case *GlobalAvgPool:
		y, err = oracle.GlobalAvgPool(x)
	case *L2Norm:
		y, err = oracle.L2Normalize(x)
	case *Sequential:
		y = x
		for _, sub := range l.Layers {
			y = graphOf(t, dev, sub, y, vars)
		}
	case *BasicBlock:
		m := graphOf(t, dev, l.Main, x, vars)
		s := x
		if l.Shortcut != nil {
			s = graphOf(t, dev, l.Shortcut, x, vars)
		}
		if y, err = G.Add(m, s); err == nil {
			y, err = G.Rectify(y)
		}
	default:
		t.Fatalf("no gorgonia graph for %T", l)
	}
	if err != nil {
		t.Fatalf("%T: %v", l, err)
	}
	return y
}

// toGraph turns a channels-last input node into gorgonia's NCHW.
func toGraph(x *G.Node) *G.Node {
	if len(x.Shape()) != 4 {
		return x
	}
	return G.Must(G.Transpose(x, 0, 3, 1, 2))
}

// fromGraph turns a graph output back to channels last.
func fromGraph(y *G.Node) *G.Node {
	if len(y.Shape()) != 4 {
		return y
	}
	return G.Must(G.Transpose(y, 0, 2, 3, 1))
}

// randomize gives every parameter (and running statistic) of a layer random
// values, so that no gradient is trivially zero.
func randomize(dev kernels.Device, rng *rand.Rand, params []*Param) {
	for _, p := range params {
		dev.Upload(p.W, randVec(rng, p.Len(), -0.5, 0.5))
		if len(p.Shape) == 1 && (p.fill == 1) { // batch norm scale: keep it away from 0
			dev.Upload(p.W, randVec(rng, p.Len(), 0.5, 1.5))
		}
		dev.Fill(p.G, 0)
	}
}

// layerCase is one layer under test with its input shape.
type layerCase struct {
	name  string
	layer func(dev kernels.Device) Layer
	shape []int
}

func layerCases() []layerCase {
	return []layerCase{
		{"conv3x3", func(d kernels.Device) Layer { return NewConv2D(d, "c", 3, 4, 3, 1, 1) }, []int{2, 6, 5, 3}},
		{"conv3x3/2", func(d kernels.Device) Layer { return NewConv2D(d, "c", 2, 3, 3, 2, 1) }, []int{3, 7, 7, 2}},
		{"conv1x1/2", func(d kernels.Device) Layer { return NewConv2D(d, "c", 4, 2, 1, 2, 0) }, []int{2, 6, 6, 4}},
		{"conv-wide", func(d kernels.Device) Layer { return NewConv2D(d, "c", 17, 20, 3, 1, 1) }, []int{2, 5, 4, 17}},
		{"batchnorm2d", func(d kernels.Device) Layer { return NewBatchNorm(d, "bn", 3) }, []int{4, 3, 2, 3}},
		{"batchnorm1d", func(d kernels.Device) Layer { return NewBatchNorm(d, "bn", 5) }, []int{6, 5}},
		{"batchnorm-relu", func(d kernels.Device) Layer { return NewBatchNormReLU(d, "bn", 4) }, []int{3, 2, 3, 4}},
		{"relu", func(d kernels.Device) Layer { return NewReLU(d) }, []int{3, 7}},
		{"linear", func(d kernels.Device) Layer { return NewLinear(d, "fc", 6, 4, true) }, []int{5, 6}},
		{"linear-images", func(d kernels.Device) Layer { return NewLinear(d, "fc", 12, 3, false) }, []int{4, 2, 2, 3}},
		{"avgpool", func(d kernels.Device) Layer { return NewGlobalAvgPool(d) }, []int{3, 3, 3, 4}},
		{"l2norm", func(d kernels.Device) Layer { return NewL2Norm(d) }, []int{4, 6}},
		{"block", func(d kernels.Device) Layer { return NewBasicBlock(d, "b", 3, 3, 1) }, []int{2, 4, 4, 3}},
		{"block/2", func(d kernels.Device) Layer { return NewBasicBlock(d, "b", 2, 4, 2) }, []int{3, 6, 6, 2}},
	}
}

func TestLayersMatchGorgoniaAndFiniteDifferences(t *testing.T) {
	dev := cpu(t)
	rng := rand.New(rand.NewPCG(51, 52))
	for _, c := range layerCases() {
		l := c.layer(dev)
		randomize(dev, rng, l.Params())
		n := 1
		for _, s := range c.shape {
			n *= s
		}
		xv := randVec(rng, n, -1, 1)
		for i, v := range xv { // keep inputs away from the ReLU kink
			if math.Abs(float64(v)) < 0.05 {
				xv[i] = 0.05
			}
		}
		x := Tensor{dev.Alloc(n), c.shape}
		dev.Upload(x.Buf, xv)
		y := l.Forward(x, true)
		r := randVec(rng, y.Buf.Len(), -1, 1)
		dy := Tensor{dev.Alloc(len(r)), y.Shape}
		dev.Upload(dy.Buf, r)
		yv := download(dev, y.Buf)
		dx := download(dev, l.Backward(dy).Buf)

		// gorgonia on the same weights and input.
		g := G.NewGraph()
		xn := oracle.Var(g, "x", numcheck.Float64s(xv), c.shape...)
		vars := map[*Param]*G.Node{}
		yn := fromGraph(graphOf(t, dev, l, toGraph(xn), vars))
		cost, err := oracle.Dot(yn, numcheck.Float64s(r))
		if err != nil {
			t.Fatal(err)
		}
		wrt := []*G.Node{xn}
		params := l.Params()
		for _, p := range params {
			wrt = append(wrt, vars[p])
		}
		want, grads, err := oracle.Run(cost, wrt...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// gorgonia may reuse a node's memory in later operations, so the
		// forward pass is compared through the cost, sum(r * y).
		var got float64
		for i := range yv {
			got += float64(yv[i]) * float64(r[i])
		}
		if math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
			t.Errorf("%s: forward sum(r*y) = %v, gorgonia %v", c.name, got, want)
		}
		if e := numcheck.RelL2(dx, grads[0]); e > 1e-4 {
			t.Errorf("%s: dL/dx differs from gorgonia by %.2g", c.name, e)
		}
		for i, p := range params {
			if e := numcheck.RelL2(download(dev, p.G), grads[i+1]); e > 1e-4 {
				t.Errorf("%s: dL/d%s differs from gorgonia by %.2g", c.name, p.Name, e)
			}
		}

		// Finite differences of sum(r * y) in float32, a few coordinates of
		// the input and of each parameter.
		objective := func() float64 {
			out := download(dev, l.Forward(x, true).Buf)
			var s float64
			for i := range out {
				s += float64(out[i]) * float64(r[i])
			}
			return s
		}
		check := func(what string, buf kernels.Buffer, grad []float32) {
			vals := download(dev, buf)
			for range 4 {
				i := rng.IntN(len(vals))
				fd := numcheck.CentralDiff(vals, i, 1e-2, func() float64 {
					dev.Upload(buf, vals)
					return objective()
				})
				dev.Upload(buf, vals)
				if math.Abs(fd-float64(grad[i])) > 2e-2*math.Abs(fd)+5e-3 {
					t.Errorf("%s: d/d%s[%d] = %v, finite difference %v", c.name, what, i, grad[i], fd)
				}
			}
		}
		if bn, ok := l.(*BatchNorm); ok && bn.ReLU {
			continue // finite differences across the ReLU's kinks mean nothing; gorgonia covers it
		}
		if _, composite := l.(*BasicBlock); composite {
			continue // its inner ReLUs make float32 finite differences meaningless; gorgonia covers it
		}
		check("x", x.Buf, dx)
		for _, p := range params {
			check(p.Name, p.W, download(dev, p.G))
		}
	}
}

// TestNetworkGradientsMatchGorgonia checks the gradient of every parameter
// of encoder + projection head + L2 normalisation + contrastive loss against
// the same network built in gorgonia.
func TestNetworkGradientsMatchGorgonia(t *testing.T) {
	dev := cpu(t)
	rng := rand.New(rand.NewPCG(53, 54))
	cases := []struct {
		cfg  Config
		in   [3]int
		loss kernels.Loss
	}{
		{Config{Arch: ArchCNN, Width: 0.25, HeadHidden: 16, Embedding: 8}, [3]int{1, 8, 8}, kernels.SINCERE},
		{Config{Arch: ArchResNet18, Width: 0.0625, Embedding: 6}, [3]int{3, 8, 8}, kernels.SupCon},
		{Config{Arch: ArchMLP, Width: 0.05, Embedding: 5}, [3]int{1, 4, 4}, kernels.SINCERE},
	}
	for _, c := range cases {
		m, err := New(dev, c.cfg, c.in, HeadProjection, 0, 7)
		if err != nil {
			t.Fatal(err)
		}
		n := 12
		labels := []int{0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3, 0}
		xv := randVec(rng, n*c.in[0]*c.in[1]*c.in[2], -1, 1)
		x := Tensor{dev.Alloc(len(xv)), []int{n, c.in[1], c.in[2], c.in[0]}}
		dev.Upload(x.Buf, xv)
		p := kernels.Params{Loss: c.loss, Temperature: 0.5}
		z := m.Forward(x, true)
		dz := dev.Alloc(z.Buf.Len())
		res, err := dev.ContrastiveLoss(p, z.Buf, n, m.OutDim(), labels, dz)
		if err != nil {
			t.Fatal(err)
		}
		m.ZeroGrads()
		m.Backward(Tensor{dz, z.Shape})

		g := G.NewGraph()
		xn := oracle.Var(g, "x", numcheck.Float64s(xv), x.Shape...)
		vars := map[*Param]*G.Node{}
		zn := graphOf(t, dev, m.HeadNet, graphOf(t, dev, m.Encoder, toGraph(xn), vars), vars)
		cost, err := oracle.ContrastiveLoss(zn, labels, p.Loss.String(), p.Temperature)
		if err != nil {
			t.Fatal(err)
		}
		var wrt []*G.Node
		params := m.Params()
		for _, q := range params {
			wrt = append(wrt, vars[q])
		}
		want, grads, err := oracle.Run(cost, wrt...)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s/%v", c.cfg.Arch, c.loss)
		if math.Abs(res.Loss-want) > 1e-5*math.Abs(want) {
			t.Errorf("%s: loss %v, gorgonia %v", name, res.Loss, want)
		}
		var worst float64
		for i, q := range params {
			e := numcheck.RelL2(download(dev, q.G), grads[i])
			worst = max(worst, e)
			if e > 1e-3 {
				t.Errorf("%s: dL/d%s differs from gorgonia by %.2g", name, q.Name, e)
			}
		}
		t.Logf("%s: %d parameters, %d arrays, worst gradient rel L2 %.2g", name, m.ParamCount(), len(params), worst)
	}
}

func TestFlopsOfTheSmallCNN(t *testing.T) {
	m, err := New(cpu(t), Config{Arch: ArchCNN, Width: 1, Embedding: 128}, [3]int{1, 28, 28}, HeadProjection, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// conv1 without an input gradient, conv2 and conv3 with one, and the
	// head's two 128 x 128 layers (each multiply-add is 2 flops).
	conv1 := 2 * 784 * 9 * 1 * 32.0
	conv2 := 2 * 196 * 288 * 64.0
	conv3 := 2 * 49 * 576 * 128.0
	head := 2 * 128 * 128.0
	want := 2*conv1 + 3*conv2 + 3*conv3 + 2*3*head
	if got := m.Flops(1); got != want {
		t.Errorf("Flops(1) = %v, want %v", got, want)
	}
	if got := m.Flops(10); got != 10*want {
		t.Errorf("Flops(10) = %v, want %v", got, 10*want)
	}
	if n := m.ParamCount(); n != 9*32+64+288*64+128+576*128+256+128*128+128+128*128+128 {
		t.Errorf("%d parameters", n)
	}
}
