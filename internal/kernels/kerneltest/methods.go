package kerneltest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sincere-ml/sincere/internal/kernels"
)

func testMemory(t *testing.T, open NewDevice, o Options) {
	dev := open(t)
	before := dev.MemStats()
	a, err := kernels.NewArena(dev, "test", 1000)
	if err != nil {
		t.Fatal(err)
	}
	mid := dev.MemStats()
	if mid.InUse < before.InUse+1000 || mid.Allocs <= before.Allocs || mid.Peak < mid.InUse {
		t.Errorf("an arena of 1000 bytes moved the stats from %+v to %+v", before, mid)
	}
	// Views are aligned, carved in order, and zero in a new arena.
	b1, err := a.Take(3)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := a.TakeScalars(2)
	if err != nil {
		t.Fatal(err)
	}
	i1, err := a.TakeInts(5)
	if err != nil {
		t.Fatal(err)
	}
	if _, off := s1.Mem(); off*8 != kernels.ArenaAlign {
		t.Errorf("second view at byte %d, want %d", off*8, kernels.ArenaAlign)
	}
	if a.Used() != 3*kernels.ArenaAlign {
		t.Errorf("used %d bytes, want %d", a.Used(), 3*kernels.ArenaAlign)
	}
	if _, err := a.Take(1000); err == nil {
		t.Error("an arena handed out more than it holds")
	}
	got := make([]float32, 3)
	if err := dev.Download(got, b1); err != nil || !slices.Equal(got, []float32{0, 0, 0}) {
		t.Errorf("a new arena holds %v (%v), want zeros", got, err)
	}
	// Round trips through every kind of view, and through sub-buffers.
	dev.Upload(b1, []float32{1.5, -2, 3})
	dev.UploadInts(i1, []int32{4, -5, 6, 7, 8})
	if err := dev.Download(got, b1); err != nil || !slices.Equal(got, []float32{1.5, -2, 3}) {
		t.Errorf("round trip gave %v (%v)", got, err)
	}
	one := make([]float32, 1)
	if err := dev.Download(one, b1.Sub(1, 1)); err != nil || one[0] != -2 {
		t.Errorf("sub-buffer [1, 2) holds %v (%v), want -2", one, err)
	}
	dev.Upload(b1.Sub(2, 1), []float32{9})
	if err := dev.Download(got, b1); err != nil || got[2] != 9 || got[1] != -2 {
		t.Errorf("upload into a sub-buffer gave %v (%v)", got, err)
	}
	sc := make([]float64, 2)
	if err := dev.ReadScalars(sc, s1); err != nil || sc[0] != 0 || sc[1] != 0 {
		t.Errorf("new scalars %v (%v), want zeros", sc, err)
	}
	// Release and Reset give space back in stack order.
	mark := a.Used()
	if _, err := a.Take(10); err != nil {
		t.Fatal(err)
	}
	a.Release(mark)
	if a.Used() != mark {
		t.Errorf("release to %d left %d used", mark, a.Used())
	}
	if f := a.Floats(); f.Len() != mark/4 {
		t.Errorf("Floats covers %d values, want %d", f.Len(), mark/4)
	}
	if err := a.Free(); err != nil {
		t.Fatal(err)
	}
	if after := dev.MemStats(); after.InUse != before.InUse {
		t.Errorf("freeing the arena left %d bytes in use, want %d", after.InUse, before.InUse)
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
}

// failure runs op on a fresh device and checks that the next sync reports
// an error naming want.
func failure(t *testing.T, f *fixture, name, want string, op func()) {
	t.Helper()
	op()
	err := f.dev.Sync()
	var oe *kernels.OpError
	if err == nil || !errors.As(err, &oe) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: sync reported %v, want an operation error naming %q", name, err, want)
	}
	if err := f.dev.Sync(); err != nil {
		t.Errorf("%s: a second sync reported %v again", name, err)
	}
}

func testErrors(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 3)
	x, short := f.buf(f.vec(12, -1, 1)), f.buf(f.vec(5, -1, 1))
	failure(t, f, "upload of the wrong length", "upload", func() { f.dev.Upload(short, make([]float32, 6)) })
	failure(t, f, "gemm into a short C", "gemm", func() {
		f.dev.Gemm(false, false, 3, 4, 3, 1, x, 3, x, 4, 0, short, 4)
	})
	failure(t, f, "gemm with a bad leading dimension", "leading dimension", func() {
		f.dev.Gemm(false, false, 3, 4, 3, 1, x, 2, x, 4, 0, x, 4)
	})
	g := kernels.ConvGeom{N: 1, C: 1, H: 3, W: 4, K: 1, R: 3, S: 3, Stride: 1, Pad: 1}
	failure(t, f, "convolution with a wrong output size", "conv2d", func() { f.dev.Conv2D(g, x, f.buf(f.vec(9, -1, 1)), short) })
	failure(t, f, "convolution without output", "conv2d", func() {
		f.dev.Conv2D(kernels.ConvGeom{N: 1, C: 1, H: 2, W: 2, K: 1, R: 3, S: 3, Stride: 1}, x, x, x)
	})
	failure(t, f, "batch norm with a short gamma", "gamma", func() {
		f.dev.BatchNormTrain(kernels.BatchNorm{Rows: 4, C: 3, X: x, Gamma: short, Beta: x.Sub(0, 3), Eps: 1e-5,
			RunMean: x.Sub(0, 3), RunVar: x.Sub(3, 3), Mean: x.Sub(6, 3), InvStd: x.Sub(9, 3), Y: x})
	})
	failure(t, f, "relu of unequal buffers", "relu", func() { f.dev.ReLU(x, short) })
	loss := f.scalars(1)
	z := f.buf(f.vec(12, -1, 1))
	failure(t, f, "a batch without anchors", "no anchor", func() {
		f.dev.ContrastiveLoss(kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1}, z, 4, 3, f.ints([]int{0, 1, 2, 3}), kernels.Buffer{}, loss)
	})
	bad := f.vec(12, -1, 1)
	bad[7] = float32(math.NaN())
	failure(t, f, "embeddings with a NaN", "NaN", func() {
		f.dev.ContrastiveLoss(kernels.Params{Loss: kernels.SupCon, Temperature: 0.1}, f.buf(bad), 4, 3, f.ints([]int{0, 1, 0, 1}), kernels.Buffer{}, loss)
	})
	failure(t, f, "a label outside the classes", "label", func() {
		f.dev.SoftmaxCrossEntropy(4, 3, x, f.ints([]int{0, 1, 3, 2}), x, loss)
	})
	// Another device's memory is refused.
	other := newFixture(t, open, 4)
	failure(t, f, "a buffer of another device", "another device", func() { f.dev.Fill(other.buf([]float32{1, 2}), 0) })
	// After a failure the device skips work until a sync reports it.
	f.dev.Fill(x, 7)
	f.dev.Upload(short, make([]float32, 6))
	f.dev.Fill(x, 1)
	if err := f.dev.Sync(); err == nil {
		t.Error("a bad upload was not reported")
	}
	if got := f.get(x); got[0] != 7 {
		t.Errorf("a fill after a failure ran before the sync: %v", got[0])
	}
}

func testTimer(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 5)
	b := f.buf(f.vec(1<<16, -1, 1))
	tm := f.dev.Timer()
	if _, err := tm.Read(); err != nil { // start afresh
		t.Fatal(err)
	}
	tm.Start()
	f.dev.Fill(b, 1)
	tm.Mark("fill")
	f.dev.ReLU(b, b)
	tm.Mark("relu")
	f.dev.Fill(b, 2)
	tm.Mark("fill")
	spans, err := tm.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || spans[0].Name != "fill" || spans[1].Name != "relu" {
		t.Fatalf("spans %v, want fill then relu", spans)
	}
	for _, s := range spans {
		if s.Time < 0 || s.Time > time.Minute {
			t.Errorf("span %s of %v", s.Name, s.Time)
		}
	}
	if spans, err := tm.Read(); err != nil || len(spans) != 0 {
		t.Errorf("a second read gave %v, %v; want nothing", spans, err)
	}
}

func testCopyFill(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 6)
	for _, n := range []int{1, 7, 1000, 65537} {
		v := f.vec(n, -3, 3)
		src, dst := f.buf(v), f.poisoned(n)
		f.dev.Copy(dst, src)
		if got := f.get(dst); !slices.Equal(got, v) {
			t.Errorf("copy of %d values differs", n)
		}
		f.dev.Fill(dst, 2.5)
		for i, x := range f.get(dst) {
			if x != 2.5 {
				t.Fatalf("fill of %d values: value %d is %v", n, i, x)
			}
		}
		f.reset()
	}
}

func testGemm(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 7)
	sizes := pick(o.Small, []int{1, 7, 49, 97, 13, 129, 193}, 4)
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for i, m := range sizes {
				n := sizes[(i+1)%len(sizes)]
				k := sizes[(i+2)%len(sizes)]
				alpha, beta := []float64{1, 0.5, -2}[i%3], []float64{0, 1, 0.75}[(i+1)%3]
				ar, ac := m, k
				if ta {
					ar, ac = k, m
				}
				br, bc := k, n
				if tb {
					br, bc = n, k
				}
				lda, ldb, ldc := ac+i%3, bc+(i+1)%3, n+i%2
				a, b := f.vec(ar*lda, -1, 1), f.vec(br*ldb, -1, 1)
				c := f.vec(m*ldc, -1, 1)
				if beta == 0 { // beta 0 ignores C: poison it
					for r := range m {
						for j := range n {
							c[r*ldc+j] = float32(math.NaN())
						}
					}
				}
				cb := f.buf(c)
				f.dev.Gemm(ta, tb, m, n, k, float32(alpha), f.buf(a), lda, f.buf(b), ldb, float32(beta), cb, ldc)
				want := GemmRef(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
				got := f.get(cb)
				name := fmt.Sprintf("gemm %s alpha %v beta %v", kernels.GemmSizes(ta, tb, m, n, k), alpha, beta)
				within(t, name, relL2(got, want), o.Tol.Product)
				for r := range m { // the padding columns are untouched
					for j := n; j < ldc; j++ {
						if got[r*ldc+j] != c[r*ldc+j] {
							t.Fatalf("%s wrote past column %d", name, n)
						}
					}
				}
				f.reset()
			}
		}
	}
}

func testBias(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 8)
	for _, sh := range [][2]int{{1, 1}, {5, 7}, {130, 33}, {1024, 128}} {
		rows, cols := sh[0], sh[1]
		y, bias := f.vec(rows*cols, -1, 1), f.vec(cols, -1, 1)
		yb := f.buf(y)
		f.dev.AddBias(yb, rows, cols, f.buf(bias))
		want := make([]float64, rows*cols)
		sums := make([]float64, cols)
		for r := range rows {
			for j := range cols {
				want[r*cols+j] = float64(y[r*cols+j]) + float64(bias[j])
				sums[j] += want[r*cols+j]
			}
		}
		within(t, fmt.Sprintf("add bias %dx%d", rows, cols), relL2(f.get(yb), want), o.Tol.Elementwise)
		// SumRows accumulates into db.
		db0 := f.vec(cols, -1, 1)
		db := f.buf(db0)
		f.dev.SumRows(yb, rows, cols, db)
		for j := range cols {
			sums[j] += float64(db0[j])
		}
		within(t, fmt.Sprintf("sum rows %dx%d", rows, cols), relL2(f.get(db), sums), o.Tol.Product)
		f.reset()
	}
}

// convGeoms are the geometries the convolution is checked on: every kind
// the encoders use (3x3 stride 1 and 2, 1x1 stride 1 and 2, the one- and
// three-channel stems, bottleneck widths), odd sizes and channel counts.
func convGeoms(small bool) []kernels.ConvGeom {
	g := []kernels.ConvGeom{
		{N: 2, C: 3, H: 7, W: 6, K: 5, R: 3, S: 3, Stride: 1, Pad: 1},
		{N: 3, C: 4, H: 9, W: 9, K: 6, R: 3, S: 3, Stride: 2, Pad: 1},
		{N: 5, C: 2, H: 6, W: 6, K: 3, R: 1, S: 1, Stride: 2, Pad: 0},
		{N: 1, C: 1, H: 28, W: 28, K: 8, R: 3, S: 3, Stride: 1, Pad: 1},
		{N: 2, C: 17, H: 5, W: 5, K: 33, R: 3, S: 3, Stride: 1, Pad: 1},
		{N: 2, C: 16, H: 8, W: 8, K: 64, R: 1, S: 1, Stride: 1, Pad: 0},
		{N: 2, C: 64, H: 8, W: 8, K: 16, R: 1, S: 1, Stride: 1, Pad: 0},
		{N: 5, C: 3, H: 4, W: 6, K: 2, R: 2, S: 3, Stride: 1, Pad: 0},
	}
	if !small {
		g = append(g,
			kernels.ConvGeom{N: 3, C: 3, H: 32, W: 32, K: 16, R: 3, S: 3, Stride: 1, Pad: 1},
			kernels.ConvGeom{N: 4, C: 32, H: 16, W: 16, K: 64, R: 3, S: 3, Stride: 2, Pad: 1},
			kernels.ConvGeom{N: 70, C: 8, H: 28, W: 28, K: 16, R: 3, S: 3, Stride: 1, Pad: 1},
			kernels.ConvGeom{N: 9, C: 24, H: 6, W: 6, K: 40, R: 3, S: 3, Stride: 1, Pad: 1},
		)
	}
	return g
}

func testConv(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 9)
	for _, g := range convGeoms(o.Small) {
		x, w := f.vec(g.InLen(), -1, 1), f.vec(g.FilterLen(), -1, 1)
		dy := f.vec(g.OutLen(), -1, 1)
		dw0 := f.vec(g.FilterLen(), -1, 1)
		wantY, wantDX, wantDW := ConvRef(g, x, w, dy)
		xb, wb, y := f.buf(x), f.buf(w), f.poisoned(g.OutLen())
		f.dev.Conv2D(g, xb, wb, y)
		within(t, "conv forward "+g.String(), relL2(f.get(y), wantY), o.Tol.Product)
		dx, dw := f.poisoned(g.InLen()), f.buf(dw0)
		f.dev.Conv2DBackward(kernels.ConvBackward{Geom: g, X: xb, W: wb, DY: f.buf(dy), DX: dx, DW: dw})
		for i, v := range dw0 { // dw is accumulated into
			wantDW[i] += float64(v)
		}
		within(t, "conv input gradient "+g.String(), relL2(f.get(dx), wantDX), o.Tol.Product)
		within(t, "conv filter gradient "+g.String(), relL2(f.get(dw), wantDW), o.Tol.Product)
		// Without DX only the filter gradient is computed.
		dw2 := f.buf(dw0)
		f.dev.Conv2DBackward(kernels.ConvBackward{Geom: g, X: xb, W: wb, DY: f.buf(dy), DW: dw2})
		within(t, "conv filter gradient alone "+g.String(), relL2(f.get(dw2), wantDW), o.Tol.Product)
		f.reset()
	}
}

func testBatchNorm(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 10)
	const eps, mom = 1e-5, 0.1
	shapes := [][2]int{{3, 1}, {37, 3}, {5000, 3}, {128, 8}, {300, 17}, {2048, 64}}
	if o.Small {
		shapes = [][2]int{{3, 1}, {37, 3}, {1100, 5}, {128, 8}}
	}
	for _, sh := range shapes {
		for _, relu := range []bool{false, true} {
			rows, c := sh[0], sh[1]
			name := fmt.Sprintf("batch norm %dx%d relu %v", rows, c, relu)
			x := f.vec(rows*c, -2, 3)
			gamma, beta := f.vec(c, 0.5, 1.5), f.vec(c, -1, 1)
			rm0, rv0 := f.vec(c, -1, 1), f.vec(c, 0.5, 2)
			a := kernels.BatchNorm{Rows: rows, C: c, X: f.buf(x), Gamma: f.buf(gamma), Beta: f.buf(beta), Eps: eps, Momentum: mom, ReLU: relu,
				RunMean: f.buf(rm0), RunVar: f.buf(rv0), Mean: f.poisoned(c), InvStd: f.poisoned(c), Y: f.poisoned(rows * c)}
			f.dev.BatchNormTrain(a)
			wantY, mean, variance := bnRef(rows, c, x, gamma, beta, eps, relu)
			within(t, name+" output", relL2(f.get(a.Y), wantY), o.Tol.Norm)
			within(t, name+" mean", relL2(f.get(a.Mean), mean), o.Tol.Norm)
			inv, rm, rv := make([]float64, c), make([]float64, c), make([]float64, c)
			for j := range c {
				inv[j] = 1 / math.Sqrt(variance[j]+eps)
				rm[j] = (1-mom)*float64(rm0[j]) + mom*mean[j]
				rv[j] = (1-mom)*float64(rv0[j]) + mom*variance[j]*float64(rows)/float64(rows-1)
			}
			within(t, name+" inverse std", relL2(f.get(a.InvStd), inv), o.Tol.Norm)
			within(t, name+" running mean", relL2(f.get(a.RunMean), rm), o.Tol.Norm)
			within(t, name+" running variance", relL2(f.get(a.RunVar), rv), o.Tol.Norm)

			dy := f.vec(rows*c, -1, 1)
			dg0, db0 := f.vec(c, -1, 1), f.vec(c, -1, 1)
			g := kernels.BatchNormGrad{Rows: rows, C: c, X: a.X, Gamma: a.Gamma, Mean: a.Mean, InvStd: a.InvStd,
				DY: f.buf(dy), DX: f.poisoned(rows * c), DGamma: f.buf(dg0), DBeta: f.buf(db0)}
			if relu {
				g.Y = a.Y
			}
			f.dev.BatchNormBackward(g)
			wdx, wdg, wdb := bnBackRef(rows, c, x, gamma, dy, wantY, eps, relu)
			for j := range c { // dgamma and dbeta are accumulated into
				wdg[j] += float64(dg0[j])
				wdb[j] += float64(db0[j])
			}
			within(t, name+" input gradient", relL2(f.get(g.DX), wdx), o.Tol.Norm)
			within(t, name+" gamma gradient", relL2(f.get(g.DGamma), wdg), o.Tol.Norm)
			within(t, name+" beta gradient", relL2(f.get(g.DBeta), wdb), o.Tol.Norm)

			// Evaluation mode normalises with the running statistics.
			e := a
			e.Y = f.poisoned(rows * c)
			e.Mean, e.InvStd = kernels.Buffer{}, kernels.Buffer{}
			runM, runV := f.get(a.RunMean), f.get(a.RunVar)
			f.dev.BatchNormEval(e)
			want := make([]float64, rows*c)
			for r := range rows {
				for j := range c {
					v := float64(gamma[j])*(float64(x[r*c+j])-float64(runM[j]))/math.Sqrt(float64(runV[j])+eps) + float64(beta[j])
					if relu {
						v = max(v, 0)
					}
					want[r*c+j] = v
				}
			}
			within(t, name+" evaluation", relL2(f.get(e.Y), want), o.Tol.Norm)
			f.reset()
		}
	}
}

func testElementwise(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 11)
	for _, n := range []int{1, 9, 1000, 100003} {
		x, dy := f.vec(n, -1, 1), f.vec(n, -1, 1)
		xb, y := f.buf(x), f.poisoned(n)
		f.dev.ReLU(xb, y)
		wantY, wantDX, wantAdd := make([]float64, n), make([]float64, n), make([]float64, n)
		for i, v := range x {
			wantY[i] = max(float64(v), 0)
			if v > 0 {
				wantDX[i] = float64(dy[i])
			}
			wantAdd[i] = float64(v) + float64(dy[i])
		}
		within(t, fmt.Sprintf("relu of %d", n), relL2(f.get(y), wantY), 0)
		dx := f.poisoned(n)
		f.dev.ReLUBackward(y, f.buf(dy), dx)
		within(t, fmt.Sprintf("relu backward of %d", n), relL2(f.get(dx), wantDX), 0)
		// In place: y = x, dx = dy.
		inPlace := f.buf(x)
		f.dev.ReLU(inPlace, inPlace)
		within(t, "relu in place", relL2(f.get(inPlace), wantY), 0)
		g := f.buf(dy)
		f.dev.ReLUBackward(y, g, g)
		within(t, "relu backward in place", relL2(f.get(g), wantDX), 0)
		// Add, out of place and into its first operand.
		sum := f.poisoned(n)
		f.dev.Add(xb, f.buf(dy), sum)
		within(t, "add", relL2(f.get(sum), wantAdd), o.Tol.Elementwise)
		a := f.buf(x)
		f.dev.Add(a, f.buf(dy), a)
		within(t, "add in place", relL2(f.get(a), wantAdd), o.Tol.Elementwise)
		f.reset()
	}
}

func testPool(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 12)
	for _, sh := range [][3]int{{1, 1, 1}, {3, 9, 5}, {7, 49, 64}, {32, 16, 128}} {
		n, hw, c := sh[0], sh[1], sh[2]
		x, dy := f.vec(n*hw*c, -1, 1), f.vec(n*c, -1, 1)
		want, wdx := PoolRef(n, hw, c, x, dy)
		y := f.poisoned(n * c)
		f.dev.GlobalAvgPool(n, hw, c, f.buf(x), y)
		within(t, fmt.Sprintf("pool %v", sh), relL2(f.get(y), want), o.Tol.Norm)
		dx := f.poisoned(n * hw * c)
		f.dev.GlobalAvgPoolBackward(n, hw, c, f.buf(dy), dx)
		within(t, fmt.Sprintf("pool backward %v", sh), relL2(f.get(dx), wdx), o.Tol.Elementwise)
		f.reset()
	}
}

func testL2(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 13)
	for _, sh := range [][2]int{{1, 1}, {7, 5}, {130, 128}, {33, 3}} {
		rows, cols := sh[0], sh[1]
		x := f.vec(rows*cols, -1, 1)
		y, norms := f.poisoned(rows*cols), f.poisoned(rows)
		f.dev.L2Normalize(rows, cols, f.buf(x), y, norms)
		wy, wn := l2Ref(rows, cols, x)
		within(t, fmt.Sprintf("l2 %v", sh), relL2(f.get(y), wy), o.Tol.Norm)
		within(t, fmt.Sprintf("l2 norms %v", sh), relL2(f.get(norms), wn), o.Tol.Norm)
		dy := f.vec(rows*cols, -1, 1)
		dx := f.poisoned(rows * cols)
		f.dev.L2NormalizeBackward(rows, cols, y, norms, f.buf(dy), dx)
		want := make([]float64, rows*cols)
		for r := range rows {
			var dot float64
			for j := range cols {
				dot += wy[r*cols+j] * float64(dy[r*cols+j])
			}
			for j := range cols {
				want[r*cols+j] = (float64(dy[r*cols+j]) - wy[r*cols+j]*dot) / wn[r]
			}
		}
		within(t, fmt.Sprintf("l2 backward %v", sh), relL2(f.get(dx), want), o.Tol.Norm)
		f.reset()
	}
}

func testCrossEntropy(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 14)
	for _, sh := range [][2]int{{1, 2}, {7, 4}, {257, 10}, {64, 100}} {
		rows, classes := sh[0], sh[1]
		logits := f.vec(rows*classes, -3, 3)
		labels := make([]int, rows)
		for i := range labels {
			labels[i] = f.rng.IntN(classes)
		}
		dl, loss := f.poisoned(rows*classes), f.scalars(1)
		f.dev.SoftmaxCrossEntropy(rows, classes, f.buf(logits), f.ints(labels), dl, loss)
		want, grad := SoftmaxCERef(rows, classes, logits, labels)
		got := f.read(loss)[0]
		within(t, fmt.Sprintf("cross entropy %v", sh), math.Abs(got-want)/math.Abs(want), o.Tol.Norm)
		within(t, fmt.Sprintf("cross entropy gradient %v", sh), relL2(f.get(dl), grad), o.Tol.Norm)
		f.reset()
	}
}

func testContrastive(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 15)
	type shape struct {
		n, d, classes int
		tau           float64
	}
	shapes := []shape{{2, 3, 1, 0.1}, {3, 5, 2, 0.5}, {47, 16, 5, 0.07}, {65, 33, 3, 0.1}, {130, 128, 10, 0.1}, {200, 8, 200, 0.5}, {301, 17, 4, 0.02}}
	if o.Small {
		shapes = shapes[:5]
	}
	for _, sh := range shapes {
		z, labels := Batch(f.rng, sh.n, sh.d, sh.classes)
		z32 := Float32s(z) // z is float32-exact: the reference sees the same values
		for _, l := range []kernels.Loss{kernels.SupCon, kernels.SINCERE, kernels.EpsSupInfoNCE} {
			p := kernels.Params{Loss: l, Temperature: sh.tau, Epsilon: 0.25}
			want, wantGrad, _, err := kernels.Reference(p, z, sh.n, sh.d, labels)
			name := fmt.Sprintf("%v n=%d d=%d classes=%d tau=%v", l, sh.n, sh.d, sh.classes, sh.tau)
			zb, lb, loss := f.buf(z32), f.ints(labels), f.scalars(1)
			if err != nil { // every label once: no anchors
				f.dev.ContrastiveLoss(p, zb, sh.n, sh.d, lb, kernels.Buffer{}, loss)
				if serr := f.dev.Sync(); !errors.Is(serr, kernels.ErrNoAnchors) {
					t.Errorf("%s: %v, want %v", name, serr, kernels.ErrNoAnchors)
				}
				continue
			}
			grad := f.poisoned(sh.n * sh.d)
			f.dev.ContrastiveLoss(p, zb, sh.n, sh.d, lb, grad, loss)
			got := f.read(loss)[0]
			// Losses are log-probabilities: near 0 (one class, say) they
			// are compared in absolute terms.
			within(t, name+" loss", math.Abs(got-want)/max(math.Abs(want), 1), o.Tol.Loss)
			within(t, name+" gradient", relL2(f.get(grad), wantGrad), o.Tol.LossGrad)
			// Forward only: the same loss.
			loss2 := f.scalars(1)
			f.dev.ContrastiveLoss(p, zb, sh.n, sh.d, lb, kernels.Buffer{}, loss2)
			if g2 := f.read(loss2)[0]; g2 != got {
				t.Errorf("%s: forward-only loss %v, with gradient %v", name, g2, got)
			}
		}
		f.reset()
	}
}

func testSGD(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 16)
	for _, n := range []int{1, 5, 70001} {
		x := f.vec(n, -2, 2)
		out := f.scalars(1)
		f.dev.SumSquares(f.buf(x), out)
		var want float64
		for _, v := range x {
			want += float64(v) * float64(v)
		}
		within(t, fmt.Sprintf("sum of squares of %d", n), math.Abs(f.read(out)[0]-want)/want, o.Tol.Norm)

		w0, g0, v0 := f.vec(n, -1, 1), f.vec(n, -1, 1), f.vec(n, -1, 1)
		const lr, mom, decay = 0.1, 0.9, 1e-2
		ww, wv := make([]float64, n), make([]float64, n)
		for i := range n {
			wv[i] = mom*float64(v0[i]) + float64(g0[i]) + decay*float64(w0[i])
			ww[i] = float64(w0[i]) - lr*wv[i]
		}
		guard := f.scalars(2)
		for _, g := range []struct {
			vals  []float64
			apply bool
		}{{[]float64{1, 2}, true}, {[]float64{math.NaN(), 2}, false}, {[]float64{1, math.Inf(1)}, false}} {
			guardHost := g.vals
			w, gb, v := f.buf(w0), f.buf(g0), f.buf(v0)
			// Scalars are written by the device only: make them with a
			// sum of squares (finite) or copy a NaN/Inf through it.
			setScalars(t, f, guard, guardHost)
			f.dev.SGD(w, gb, v, lr, mom, decay, guard)
			if g.apply {
				within(t, fmt.Sprintf("sgd of %d: weights", n), relL2(f.get(w), ww), o.Tol.Elementwise)
				within(t, fmt.Sprintf("sgd of %d: momentum", n), relL2(f.get(v), wv), o.Tol.Elementwise)
			} else if !slices.Equal(f.get(w), w0) || !slices.Equal(f.get(v), v0) {
				t.Errorf("sgd of %d with guard %v changed the weights", n, guardHost)
			}
		}
		// Without a guard it always applies.
		w := f.buf(w0)
		f.dev.SGD(w, f.buf(g0), f.buf(v0), lr, mom, decay, kernels.Scalars{})
		within(t, fmt.Sprintf("sgd of %d without a guard", n), relL2(f.get(w), ww), o.Tol.Elementwise)
		f.reset()
	}
}

// setScalars makes the device scalars s hold vals, through the device's
// own operations (the interface has no scalar upload): a sum of squares of
// each value, whose square root it is, or of an Inf or NaN.
func setScalars(t *testing.T, f *fixture, s kernels.Scalars, vals []float64) {
	t.Helper()
	for i, v := range vals {
		x := float32(math.Sqrt(v))
		if math.IsInf(v, 1) {
			x = float32(math.Inf(1))
		}
		f.dev.SumSquares(f.buf([]float32{x}), s.Sub(i, 1))
	}
	got := f.read(s)
	for i, v := range vals {
		if !(got[i] == v || math.IsNaN(v) && math.IsNaN(got[i]) || math.Abs(got[i]-v) < 1e-6*math.Abs(v)) {
			t.Fatalf("scalar %d is %v, want %v", i, got[i], v)
		}
	}
}

func testDeterminism(t *testing.T, open NewDevice, o Options) {
	f := newFixture(t, open, 17)
	g := kernels.ConvGeom{N: 6, C: 24, H: 12, W: 12, K: 40, R: 3, S: 3, Stride: 1, Pad: 1}
	if !o.Small {
		g = kernels.ConvGeom{N: 70, C: 8, H: 28, W: 28, K: 16, R: 3, S: 3, Stride: 1, Pad: 1}
	}
	x, w, dy := f.buf(f.vec(g.InLen(), -1, 1)), f.buf(f.vec(g.FilterLen(), -1, 1)), f.buf(f.vec(g.OutLen(), -1, 1))
	rows, c := g.N*g.OutH()*g.OutW(), g.K
	z, labels := Batch(f.rng, 150, 32, 7)
	z32 := Float32s(z)
	zb, lb := f.buf(z32), f.ints(labels)
	gamma, beta := f.buf(f.vec(c, 0.5, 1.5)), f.buf(f.vec(c, -1, 1))
	run := func() ([][]float32, []float64) {
		y, dx, dw := f.poisoned(g.OutLen()), f.poisoned(g.InLen()), f.buf(make([]float32, g.FilterLen()))
		f.dev.Conv2D(g, x, w, y)
		f.dev.Conv2DBackward(kernels.ConvBackward{Geom: g, X: x, W: w, DY: dy, DX: dx, DW: dw})
		bn := kernels.BatchNorm{Rows: rows, C: c, X: y, Gamma: gamma, Beta: beta, Eps: 1e-5, Momentum: 0.1, ReLU: true,
			RunMean: f.buf(make([]float32, c)), RunVar: f.buf(make([]float32, c)), Mean: f.poisoned(c), InvStd: f.poisoned(c), Y: f.poisoned(rows * c)}
		f.dev.BatchNormTrain(bn)
		bg := kernels.BatchNormGrad{Rows: rows, C: c, X: y, Y: bn.Y, Gamma: gamma, Mean: bn.Mean, InvStd: bn.InvStd, DY: dy,
			DX: f.poisoned(rows * c), DGamma: f.buf(make([]float32, c)), DBeta: f.buf(make([]float32, c))}
		f.dev.BatchNormBackward(bg)
		grad, loss, sq := f.poisoned(len(z32)), f.scalars(1), f.scalars(1)
		f.dev.ContrastiveLoss(kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1}, zb, 150, 32, lb, grad, loss)
		f.dev.SumSquares(dw, sq)
		scalars := append(f.read(loss), f.read(sq)...)
		return [][]float32{f.get(y), f.get(dx), f.get(dw), f.get(bn.Y), f.get(bg.DX), f.get(bg.DGamma), f.get(grad)}, scalars
	}
	first, s1 := run()
	second, s2 := run()
	names := []string{"conv output", "conv input gradient", "conv filter gradient", "batch norm output",
		"batch norm input gradient", "batch norm gamma gradient", "loss gradient"}
	for i := range first {
		if !slices.Equal(first[i], second[i]) {
			t.Errorf("the %s differs between two identical runs", names[i])
		}
	}
	if !slices.Equal(s1, s2) {
		t.Errorf("the loss or the sum of squares differs between two identical runs: %v, %v", s1, s2)
	}
}
