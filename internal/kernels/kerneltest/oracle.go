package kerneltest

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/numcheck"
	"github.com/sincere-ml/sincere/internal/oracle"
)

// graphOf builds the gorgonia graph of one of the encoder's layers on x,
// with a variable node per parameter (recorded in vars), in training mode.
// Images are NCHW in the graph (gorgonia's convolution wants them so) and
// channels-last on the device; toGraph and fromGraph convert at the ends.
func graphOf(t *testing.T, f *fixture, l encoder.Layer, x *G.Node, vars map[*encoder.Param]*G.Node) *G.Node {
	t.Helper()
	v := func(p *encoder.Param) *G.Node {
		n := oracle.Var(x.Graph(), p.Name, numcheck.Float64s(f.get(p.W)), p.Shape...)
		vars[p] = n
		return n
	}
	var y *G.Node
	var err error
	residual := func(main, shortcut *encoder.Sequential) {
		m := graphOf(t, f, main, x, vars)
		s := x
		if shortcut != nil {
			s = graphOf(t, f, shortcut, x, vars)
		}
		if y, err = G.Add(m, s); err == nil {
			y, err = G.Rectify(y)
		}
	}
	switch l := l.(type) {
	case *encoder.Conv2D:
		// Filters are R x S x C x K on the device, K x C x R x S in gorgonia.
		w := G.Must(G.Transpose(v(l.W), 3, 2, 0, 1))
		y, err = oracle.Conv2D(x, w, l.R, l.Stride, l.Pad)
	case *encoder.BatchNorm:
		if y, err = oracle.BatchNorm(x, v(l.Gamma), v(l.Beta), 1e-5); err == nil && l.ReLU {
			y, err = G.Rectify(y)
		}
	case *encoder.ReLU:
		y, err = G.Rectify(x)
	case *encoder.Linear:
		var b *G.Node
		if l.B != nil {
			b = v(l.B)
		}
		if len(x.Shape()) == 4 { // flatten in the device's order, channels last
			x = G.Must(G.Transpose(x, 0, 2, 3, 1))
		}
		y, err = oracle.Linear(x, v(l.W), b)
	case *encoder.GlobalAvgPool:
		y, err = oracle.GlobalAvgPool(x)
	case *encoder.L2Norm:
		y, err = oracle.L2Normalize(x)
	case *encoder.Sequential:
		y = x
		for _, sub := range l.Layers {
			y = graphOf(t, f, sub, y, vars)
		}
	case *encoder.BasicBlock:
		residual(l.Main, l.Shortcut)
	case *encoder.Bottleneck:
		residual(l.Main, l.Shortcut)
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

// randomize gives every parameter random values (batch norm scales away
// from 0), so that no gradient is trivially zero.
func randomize(f *fixture, params []*encoder.Param) {
	for _, p := range params {
		lo, hi := -0.5, 0.5
		if strings.HasSuffix(p.Name, ".gamma") {
			lo, hi = 0.5, 1.5
		}
		f.dev.Upload(p.W, f.vec(p.Len(), lo, hi))
	}
}

// layerCase is one layer under test with its input shape.
type layerCase struct {
	name  string
	layer func(dev kernels.Device) encoder.Layer
	shape []int
}

func layerCases() []layerCase {
	return []layerCase{
		{"conv3x3", func(d kernels.Device) encoder.Layer { return encoder.NewConv2D(d, "c", 3, 4, 3, 1, 1) }, []int{2, 6, 5, 3}},
		{"conv3x3/2", func(d kernels.Device) encoder.Layer { return encoder.NewConv2D(d, "c", 2, 3, 3, 2, 1) }, []int{3, 7, 7, 2}},
		{"conv1x1/2", func(d kernels.Device) encoder.Layer { return encoder.NewConv2D(d, "c", 4, 2, 1, 2, 0) }, []int{2, 6, 6, 4}},
		{"conv-wide", func(d kernels.Device) encoder.Layer { return encoder.NewConv2D(d, "c", 17, 20, 3, 1, 1) }, []int{2, 5, 4, 17}},
		{"batchnorm2d", func(d kernels.Device) encoder.Layer { return encoder.NewBatchNorm(d, "bn", 3) }, []int{4, 3, 2, 3}},
		{"batchnorm1d", func(d kernels.Device) encoder.Layer { return encoder.NewBatchNorm(d, "bn", 5) }, []int{6, 5}},
		{"batchnorm-relu", func(d kernels.Device) encoder.Layer { return encoder.NewBatchNormReLU(d, "bn", 4) }, []int{3, 2, 3, 4}},
		{"relu", func(d kernels.Device) encoder.Layer { return encoder.NewReLU(d) }, []int{3, 7}},
		{"linear", func(d kernels.Device) encoder.Layer { return encoder.NewLinear(d, "fc", 6, 4, true) }, []int{5, 6}},
		{"linear-images", func(d kernels.Device) encoder.Layer { return encoder.NewLinear(d, "fc", 12, 3, false) }, []int{4, 2, 2, 3}},
		{"avgpool", func(d kernels.Device) encoder.Layer { return encoder.NewGlobalAvgPool(d) }, []int{3, 3, 3, 4}},
		{"l2norm", func(d kernels.Device) encoder.Layer { return encoder.NewL2Norm(d) }, []int{4, 6}},
		{"basic-block", func(d kernels.Device) encoder.Layer { return encoder.NewBasicBlock(d, "b", 3, 3, 1) }, []int{2, 4, 4, 3}},
		{"basic-block/2", func(d kernels.Device) encoder.Layer { return encoder.NewBasicBlock(d, "b", 2, 4, 2) }, []int{3, 6, 6, 2}},
		{"bottleneck", func(d kernels.Device) encoder.Layer { return encoder.NewBottleneck(d, "b", 8, 2, 1) }, []int{2, 4, 4, 8}},
		{"bottleneck/2", func(d kernels.Device) encoder.Layer { return encoder.NewBottleneck(d, "b", 3, 2, 2) }, []int{2, 6, 6, 3}},
	}
}

// testLayers checks every layer's output and gradients (input and
// parameters) against gorgonia on the same weights and input.
func testLayers(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 18)
	for _, c := range layerCases() {
		l := c.layer(f.dev)
		m, err := encoder.Single(f.dev, l, c.shape[1:], 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Prepare(c.shape[0], true); err != nil {
			t.Fatal(err)
		}
		randomize(f, l.Params())
		n := 1
		for _, s := range c.shape {
			n *= s
		}
		xv := f.vec(n, -1, 1)
		for i, v := range xv { // keep inputs away from the ReLU kink
			if math.Abs(float64(v)) < 0.05 {
				xv[i] = 0.05
			}
		}
		x := encoder.Tensor{Buf: f.buf(xv), Shape: c.shape}
		y := m.Forward(x, true)
		r := f.vec(y.Buf.Len(), -1, 1)
		yv := f.get(y.Buf)
		m.ZeroGrads()
		dx := l.Backward(encoder.Tensor{Buf: f.buf(r), Shape: y.Shape})
		dxv := f.get(dx.Buf)

		g := G.NewGraph()
		xn := oracle.Var(g, "x", numcheck.Float64s(xv), c.shape...)
		vars := map[*encoder.Param]*G.Node{}
		yn := fromGraph(graphOf(t, f, l, toGraph(xn), vars))
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
		within(t, c.name+": forward sum(r*y)", math.Abs(got-want)/(1+math.Abs(want)), o.Tol.Layer)
		within(t, c.name+": dL/dx", relL2(dxv, grads[0]), o.Tol.Layer)
		for i, p := range params {
			within(t, fmt.Sprintf("%s: dL/d%s", c.name, p.Name), relL2(f.get(p.G), grads[i+1]), o.Tol.Layer)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		f.reset()
	}
}

// stepCase is a network whose whole training step is checked.
type stepCase struct {
	cfg  encoder.Config
	in   [3]int
	loss kernels.Loss
}

func stepCases(small bool) []stepCase {
	c := []stepCase{
		{encoder.Config{Arch: encoder.ArchCNN, Width: 0.25, HeadHidden: 16, Embedding: 8}, [3]int{1, 8, 8}, kernels.SINCERE},
		{encoder.Config{Arch: encoder.ArchMLP, Width: 0.05, Embedding: 5}, [3]int{1, 4, 4}, kernels.SINCERE},
		{encoder.Config{Arch: encoder.ArchResNet18, Width: 0.0625, Embedding: 6}, [3]int{3, 8, 8}, kernels.SupCon},
	}
	if !small {
		c = append(c, stepCase{encoder.Config{Arch: encoder.ArchResNet50, Width: 0.0625, Embedding: 6}, [3]int{3, 8, 8}, kernels.SINCERE})
	}
	return c
}

// testSteps checks the loss and the gradient of every parameter of encoder
// + projection head + L2 normalisation + contrastive loss, computed on the
// device, against the same network built in gorgonia.
func testSteps(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 19)
	for _, c := range stepCases(o.Small) {
		m, err := encoder.New(f.dev, c.cfg, c.in, encoder.HeadProjection, 0, 7)
		if err != nil {
			t.Fatal(err)
		}
		const n = 12
		if err := m.Prepare(n, true); err != nil {
			t.Fatal(err)
		}
		labels := []int{0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3, 0}
		xv := f.vec(n*c.in[0]*c.in[1]*c.in[2], -1, 1)
		x := encoder.Tensor{Buf: f.buf(xv), Shape: []int{n, c.in[1], c.in[2], c.in[0]}}
		p := kernels.Params{Loss: c.loss, Temperature: 0.5}
		z := m.Forward(x, true)
		dz, loss := f.poisoned(z.Buf.Len()), f.scalars(1)
		f.dev.ContrastiveLoss(p, z.Buf, n, m.OutDim(), f.ints(labels), dz, loss)
		m.ZeroGrads()
		m.Backward(encoder.Tensor{Buf: dz, Shape: z.Shape})
		got := f.read(loss)[0]

		g := G.NewGraph()
		xn := oracle.Var(g, "x", numcheck.Float64s(xv), x.Shape...)
		vars := map[*encoder.Param]*G.Node{}
		zn := graphOf(t, f, m.HeadNet, graphOf(t, f, m.Encoder, toGraph(xn), vars), vars)
		name := fmt.Sprintf("%s/%v", c.cfg.Arch, c.loss)
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
		within(t, name+": loss", math.Abs(got-want)/math.Abs(want), o.Tol.Layer) // the network in float32 before the loss
		var worst float64
		for i, q := range params {
			e := relL2(f.get(q.G), grads[i])
			worst = max(worst, e)
			within(t, fmt.Sprintf("%s: dL/d%s", name, q.Name), e, o.Tol.Step)
		}
		t.Logf("%s: %d parameters in %d arrays, worst gradient rel L2 %.2g", name, m.ParamCount(), len(params), worst)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		f.reset()
	}
}

// testSteadyState runs training steps as the pretraining loop does and
// checks that after the first step the device allocates nothing more and
// holds no more memory.
func testSteadyState(t *testing.T, open NewDevice, o Options) {
	dev := open(t)
	for _, arch := range []string{encoder.ArchCNN, encoder.ArchResNet18} {
		m, err := encoder.New(dev, encoder.Config{Arch: arch, Width: 0.125, Embedding: 8}, [3]int{1, 8, 8}, encoder.HeadProjection, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		const rows = 16
		if err := m.Prepare(rows, true); err != nil {
			t.Fatal(err)
		}
		io, err := kernels.NewArena(dev, "step", kernels.ArenaBytes(4*rows*64, 4*rows*8, 4*rows, 16))
		if err != nil {
			t.Fatal(err)
		}
		x, _ := io.Take(rows * 64)
		dz, _ := io.Take(rows * 8)
		labels, _ := io.TakeInts(rows)
		stats, _ := io.TakeScalars(2)
		images := make([]float32, rows*64)
		lab := make([]int32, rows)
		read := make([]float64, 2)
		var after1 kernels.MemStats
		for step := range 4 {
			for i := range images {
				images[i] = float32(math.Sin(float64(i*(step+3)) * 0.37))
			}
			for i := range lab {
				lab[i] = int32((i + step) % 4)
			}
			dev.Upload(x, images)
			dev.UploadInts(labels, lab)
			z := m.Forward(encoder.Tensor{Buf: x, Shape: []int{rows, 8, 8, 1}}, true)
			dev.ContrastiveLoss(kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1}, z.Buf, rows, 8, labels, dz, stats.Sub(0, 1))
			m.ZeroGrads()
			m.Backward(encoder.Tensor{Buf: dz, Shape: z.Shape})
			m.GradSumSquares(stats.Sub(1, 1))
			m.SGD(0.1, 0.9, 1e-4, stats)
			if err := dev.ReadScalars(read, stats); err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(read[0]) || math.IsNaN(read[1]) {
				t.Fatalf("%s step %d: loss %v, squared gradient norm %v", arch, step, read[0], read[1])
			}
			if step == 0 {
				after1 = dev.MemStats()
				continue
			}
			if s := dev.MemStats(); s.Allocs != after1.Allocs || s.InUse != after1.InUse {
				t.Errorf("%s step %d: the device allocated: %+v after the first step, %+v now", arch, step+1, after1, s)
			}
		}
		if err := io.Free(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
