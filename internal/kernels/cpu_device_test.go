package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/numcheck"
)

func devices(t *testing.T) map[string]*CPUDevice {
	t.Helper()
	out := map[string]*CPUDevice{}
	for name, opt := range map[string]CPUOptions{"portable/1": {Workers: 1, Portable: true}, "fast/3": {Workers: 3}} {
		d, err := NewCPUDevice(opt)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = d
	}
	return out
}

// naiveConv computes the convolution in float64: x is N x H x W x C, w is
// R x S x C x K, y is N x OutH x OutW x K.
func naiveConv(g ConvGeom, x, w []float32) []float64 {
	ho, wo := g.OutH(), g.OutW()
	y := make([]float64, g.N*g.K*ho*wo)
	for n := range g.N {
		for k := range g.K {
			for oh := range ho {
				for ow := range wo {
					var s float64
					for c := range g.C {
						for r := range g.R {
							for q := range g.S {
								ih, iw := oh*g.Stride-g.Pad+r, ow*g.Stride-g.Pad+q
								if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
									s += float64(x[((n*g.H+ih)*g.W+iw)*g.C+c]) * float64(w[((r*g.S+q)*g.C+c)*g.K+k])
								}
							}
						}
					}
					y[((n*ho+oh)*wo+ow)*g.K+k] = s
				}
			}
		}
	}
	return y
}

// dot returns sum a*b in float64.
func dot32(a []float32, b []float64) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * b[i]
	}
	return s
}

func TestConv2DForwardAndBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	geoms := []ConvGeom{
		{N: 2, C: 3, H: 7, W: 6, K: 5, R: 3, S: 3, Stride: 1, Pad: 1},
		{N: 3, C: 4, H: 9, W: 9, K: 6, R: 3, S: 3, Stride: 2, Pad: 1},
		{N: 70, C: 2, H: 5, W: 5, K: 3, R: 1, S: 1, Stride: 2, Pad: 0},
		{N: 9, C: 20, H: 6, W: 6, K: 33, R: 3, S: 3, Stride: 1, Pad: 1},
		{N: 1, C: 1, H: 28, W: 28, K: 8, R: 3, S: 3, Stride: 1, Pad: 1},
		{N: 5, C: 3, H: 4, W: 6, K: 2, R: 2, S: 3, Stride: 1, Pad: 0},
	}
	for name, d := range devices(t) {
		for _, g := range geoms {
			if err := g.Validate(); err != nil {
				t.Fatal(err)
			}
			x := randomVec(rng, g.N*g.C*g.H*g.W, -1, 1)
			w := randomVec(rng, g.K*g.C*g.R*g.S, -1, 1)
			ny := g.N * g.K * g.OutH() * g.OutW()
			y := make(HostBuffer, ny)
			d.Conv2D(g, HostBuffer(x), HostBuffer(w), y)
			want := naiveConv(g, x, w)
			if e := numcheck.RelL2([]float32(y), want); e > 1e-6 {
				t.Fatalf("%s %+v: forward rel err %.2g", name, g, e)
			}
			// Backward: L = sum r . y, so dL/dx and dL/dw are checked against
			// the adjoint identity and by perturbing single inputs.
			r := randomVec(rng, ny, -1, 1)
			dx := make(HostBuffer, len(x))
			dw := make(HostBuffer, len(w))
			dw[0] = 1 // accumulated into
			d.Conv2DBackward(g, HostBuffer(x), HostBuffer(w), HostBuffer(r), dx, dw)
			dw[0]--
			r64 := numcheck.Float64s(r)
			for _, probe := range []struct {
				v    []float32
				grad []float32
			}{{x, dx}, {w, dw}} {
				for range 6 {
					i := rng.IntN(len(probe.v))
					// Linear in each input: exact with step 0.5 each way.
					fd := numcheck.CentralDiff(probe.v, i, 0.5, func() float64 { return dot32to64(naiveConv(g, x, w), r64) })
					if math.Abs(fd-float64(probe.grad[i])) > 1e-4*(1+math.Abs(fd)) {
						t.Fatalf("%s %+v: gradient %v, finite difference %v", name, g, probe.grad[i], fd)
					}
				}
			}
		}
	}
}

func dot32to64(a []float64, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// channelStats returns the mean and biased variance of channel ch of x
// (rows x c), two passes in float64.
func channelStats(x []float32, rows, c, ch int) (mean, variance float64) {
	var s float64
	for r := range rows {
		s += float64(x[r*c+ch])
	}
	mean = s / float64(rows)
	var q float64
	for r := range rows {
		dv := float64(x[r*c+ch]) - mean
		q += dv * dv
	}
	return mean, q / float64(rows)
}

// bnLoss evaluates L = sum r . BN(x) in float64 with batch statistics.
func bnLoss(rows, c int, x, gamma, beta []float32, r []float32, eps float64) float64 {
	var L float64
	for ch := range c {
		m, v := channelStats(x, rows, c, ch)
		for i := range rows {
			k := i*c + ch
			L += float64(r[k]) * (float64(gamma[ch])*(float64(x[k])-m)/math.Sqrt(v+eps) + float64(beta[ch]))
		}
	}
	return L
}

func TestBatchNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for name, d := range devices(t) {
		rows, c := 5000, 3 // more than one block of partial sums
		x := randomVec(rng, rows*c, -2, 3)
		gamma, beta := randomVec(rng, c, 0.5, 1.5), randomVec(rng, c, -1, 1)
		runM, runV := make(HostBuffer, c), HostBuffer{1, 1, 1}
		mean, inv, y := make(HostBuffer, c), make(HostBuffer, c), make(HostBuffer, len(x))
		d.BatchNormTrain(rows, c, HostBuffer(x), HostBuffer(gamma), HostBuffer(beta), 1e-5, 0.1, false, runM, runV, mean, inv, y)
		for ch := range c {
			mu, v := channelStats(x, rows, c, ch)
			if math.Abs(float64(mean[ch])-mu) > 1e-6 || math.Abs(float64(runM[ch])-0.1*mu) > 1e-6 ||
				math.Abs(float64(runV[ch])-(0.9+0.1*v*5000/4999)) > 1e-5 {
				t.Fatalf("%s: channel %d stats %v %v %v %v", name, ch, mean[ch], runM[ch], runV[ch], v)
			}
		}
		r := randomVec(rng, len(x), -1, 1)
		if got, want := dot32(y, numcheck.Float64s(r)), bnLoss(rows, c, x, gamma, beta, r, 1e-5); math.Abs(got-want) > 1e-3 {
			t.Fatalf("%s: forward %v want %v", name, got, want)
		}
		dx, dg, db := make(HostBuffer, len(x)), make(HostBuffer, c), make(HostBuffer, c)
		d.BatchNormBackward(rows, c, HostBuffer(x), nil, HostBuffer(gamma), mean, inv, HostBuffer(r), dx, dg, db)
		for _, probe := range []struct {
			v, g []float32
		}{{x, dx}, {gamma, dg}, {beta, db}} {
			for range 5 {
				i := rng.IntN(len(probe.v))
				fd := numcheck.CentralDiff(probe.v, i, 1e-3, func() float64 { return bnLoss(rows, c, x, gamma, beta, r, 1e-5) })
				if math.Abs(fd-float64(probe.g[i])) > 2e-3*(1+math.Abs(fd)) {
					t.Fatalf("%s: gradient %v, finite difference %v", name, probe.g[i], fd)
				}
			}
		}
		// Eval mode with the running statistics.
		d.BatchNormEval(rows, c, HostBuffer(x), HostBuffer(gamma), HostBuffer(beta), runM, runV, 1e-5, false, y)
		want := (float64(x[0])-float64(runM[0]))/math.Sqrt(float64(runV[0])+1e-5)*float64(gamma[0]) + float64(beta[0])
		if math.Abs(float64(y[0])-want) > 1e-5 {
			t.Errorf("%s: eval %v want %v", name, y[0], want)
		}
	}
}

func TestL2NormalizeAndCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for name, d := range devices(t) {
		rows, cols := 7, 5
		x := randomVec(rng, rows*cols, -1, 1)
		y, norms := make(HostBuffer, len(x)), make(HostBuffer, rows)
		d.L2Normalize(rows, cols, HostBuffer(x), y, norms)
		r := randomVec(rng, len(x), -1, 1)
		loss := func() float64 {
			var L float64
			for i := range rows {
				var s float64
				for j := range cols {
					s += float64(x[i*cols+j]) * float64(x[i*cols+j])
				}
				for j := range cols {
					L += float64(r[i*cols+j]) * float64(x[i*cols+j]) / math.Sqrt(s)
				}
			}
			return L
		}
		if math.Abs(dot32(y, numcheck.Float64s(r))-loss()) > 1e-5 {
			t.Fatalf("%s: L2 forward", name)
		}
		dx := make(HostBuffer, len(x))
		d.L2NormalizeBackward(rows, cols, y, norms, HostBuffer(r), dx)
		for i := range x {
			if fd := numcheck.CentralDiff(x, i, 1e-3, loss); math.Abs(fd-float64(dx[i])) > 1e-3*(1+math.Abs(fd)) {
				t.Fatalf("%s: L2 gradient %v, finite difference %v", name, dx[i], fd)
			}
		}
		classes := 4
		logits := randomVec(rng, rows*classes, -3, 3)
		labels := []int{0, 3, 1, 1, 2, 0, 3}
		dl := make(HostBuffer, len(logits))
		ce := d.SoftmaxCrossEntropy(rows, classes, HostBuffer(logits), labels, dl)
		ceOf := func() float64 {
			var L float64
			for i := range rows {
				var s float64
				for j := range classes {
					s += math.Exp(float64(logits[i*classes+j]))
				}
				L += math.Log(s) - float64(logits[i*classes+labels[i]])
			}
			return L / float64(rows)
		}
		if math.Abs(ce-ceOf()) > 1e-6 {
			t.Fatalf("%s: cross entropy %v want %v", name, ce, ceOf())
		}
		for i := range logits {
			if fd := numcheck.CentralDiff(logits, i, 1e-3, ceOf); math.Abs(fd-float64(dl[i])) > 1e-4 {
				t.Fatalf("%s: CE gradient %v, finite difference %v", name, dl[i], fd)
			}
		}
	}
}

func TestElementwiseAndSGD(t *testing.T) {
	for name, d := range devices(t) {
		x := HostBuffer{-1, 2, 0, 3, -0.5, 4}
		y := make(HostBuffer, 6)
		d.ReLU(x, y)
		dx := make(HostBuffer, 6)
		d.ReLUBackward(y, HostBuffer{1, 1, 1, 1, 1, 1}, dx)
		if y[0] != 0 || y[1] != 2 || dx[0] != 0 || dx[1] != 1 || dx[2] != 0 {
			t.Errorf("%s: relu %v %v", name, y, dx)
		}
		pooled := make(HostBuffer, 2) // one image of 3 pixels x 2 channels: (-1, 2), (0, 3), (-0.5, 4)
		d.GlobalAvgPool(1, 3, 2, x, pooled)
		if math.Abs(float64(pooled[0])+0.5) > 1e-6 || math.Abs(float64(pooled[1])-3) > 1e-6 {
			t.Errorf("%s: pool %v", name, pooled)
		}
		d.GlobalAvgPoolBackward(1, 3, 2, HostBuffer{3, 6}, dx)
		if dx[0] != 1 || dx[1] != 2 || dx[5] != 2 {
			t.Errorf("%s: pool backward %v", name, dx)
		}
		d.Add(x, x, y)
		if y[3] != 6 {
			t.Errorf("%s: add %v", name, y)
		}
		m := HostBuffer{1, 2, 3, 4, 5, 6} // 2 x 3
		d.AddBias(m, 2, 3, HostBuffer{10, 20, 30})
		db := HostBuffer{1, 1, 1}
		d.SumRows(m, 2, 3, db)
		if m[5] != 36 || db[0] != 1+11+14 {
			t.Errorf("%s: bias %v %v", name, m, db)
		}
		w, g, v := HostBuffer{1, -2}, HostBuffer{0.5, 0.25}, HostBuffer{0, 0.1}
		d.SGD(w, g, v, 0.1, 0.9, 0.01)
		// v = 0.9 v + g + 0.01 w; w -= 0.1 v
		if math.Abs(float64(v[0])-0.51) > 1e-6 || math.Abs(float64(w[0])-(1-0.051)) > 1e-6 ||
			math.Abs(float64(v[1])-(0.09+0.25-0.02)) > 1e-6 {
			t.Errorf("%s: sgd w %v v %v", name, w, v)
		}
		if s := d.SumSquares(HostBuffer{3, 4}); s != 25 {
			t.Errorf("%s: sum squares %v", name, s)
		}
	}
}

// TestConvIsDeterministicAcrossWorkers checks that the convolution's three
// products give the same bits with 1 and 3 workers, on a shape that takes
// the k-split for the filter gradient and one that does not.
func TestConvIsDeterministicAcrossWorkers(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, g := range []ConvGeom{
		{N: 70, C: 8, H: 28, W: 28, K: 16, R: 3, S: 3, Stride: 1, Pad: 1}, // 54880 pixels: k-split
		{N: 9, C: 24, H: 6, W: 6, K: 40, R: 3, S: 3, Stride: 1, Pad: 1},   // few pixels: column split
	} {
		x := HostBuffer(randomVec(rng, g.N*g.H*g.W*g.C, -1, 1))
		w := HostBuffer(randomVec(rng, g.R*g.S*g.C*g.K, -1, 1))
		dy := HostBuffer(randomVec(rng, g.N*g.OutH()*g.OutW()*g.K, -1, 1))
		var ref [3][]float32
		for _, workers := range []int{1, 3} {
			d, _ := NewCPUDevice(CPUOptions{Workers: workers})
			y := make(HostBuffer, len(dy))
			dx, dw := make(HostBuffer, len(x)), make(HostBuffer, len(w))
			d.Conv2D(g, x, w, y)
			d.Conv2DBackward(g, x, w, dy, dx, dw)
			got := [3][]float32{y, dx, dw}
			if ref[0] == nil {
				ref = got
				continue
			}
			for i := range got {
				for j := range got[i] {
					if got[i][j] != ref[i][j] {
						t.Fatalf("%+v: output %d differs at %d between 1 and %d workers", g, i, j, workers)
					}
				}
			}
		}
	}
}
