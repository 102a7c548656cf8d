//go:build gpuemu

package cudaemu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/fused"
)

// The fused contrastive loss as a launch sequence with no host round trip
// (loss.cu's header): the host sorts and uploads (fused.RowStats.SortLabels,
// as the CUDA device does), the device does the rest, the loss lands in a
// float64 device scalar. Checked against kernels.Reference, the float64
// oracle of DESIGN section 2.

// lossRun is one case: its inputs as the host prepares them.
type lossRun struct {
	p               kernels.Params
	n, d            int
	precision       string
	z               []float32
	labels          []int
	order           []int32 // sorted row -> original row
	sorted          []int32 // sorted dense class, -1 padding
	anchors, np, dp int
	nb, width       int
}

// newLossRun draws n unit rows of d values with labels of classes classes,
// the first singletons rows given classes of their own (not anchors).
func newLossRun(rng *rand.Rand, p kernels.Params, n, d, classes, singletons int, prec string) *lossRun {
	r := &lossRun{p: p, n: n, d: d, precision: prec}
	r.z = make([]float32, n*d)
	for i := range n {
		var ss float64
		row := r.z[i*d : (i+1)*d]
		for k := range row {
			row[k] = float32(rng.NormFloat64())
			ss += float64(row[k]) * float64(row[k])
		}
		for k := range row {
			row[k] = float32(float64(row[k]) / math.Sqrt(ss))
		}
	}
	r.labels = make([]int, n)
	for i := range r.labels {
		r.labels[i] = 10 * rng.IntN(classes) // sparse label values: the host makes them dense
	}
	for i := range singletons {
		r.labels[i] = 1000 + i
	}
	// The host's part: a stable sort by label, dense classes, padding.
	r.np, r.dp = (n+63)/64*64, (d+31)/32*32
	r.nb = r.np / 64
	var st fused.RowStats
	r.anchors, _ = st.SortLabels(r.labels, r.np)
	r.order = make([]int32, n)
	for k, i := range st.Order {
		r.order[k] = int32(i)
	}
	r.sorted = st.Label
	r.width = 256
	for _, w := range []int{32, 64, 128} {
		if r.dp <= w {
			r.width = w
			break
		}
	}
	return r
}

// run launches the sequence and returns the loss and the gradient.
func (r *lossRun) run(t *testing.T, d dev) (float64, []float32) {
	t.Helper()
	n, np, nb := r.n, r.np, r.nb
	z, order, labels := upload(t, r.z), upload(t, r.order), upload(t, r.sorted)
	zs := alloc[float32](t, np*r.dp)
	badInput := upload(t, []uint64{math.MaxUint64})
	positives, blockLo, blockHi := alloc[int32](t, np), alloc[int32](t, nb), alloc[int32](t, nb)
	negMax, posMax, u2 := alloc[float32](t, np), alloc[float32](t, np), alloc[float32](t, np)
	negSum, posSum, posSim := alloc[float64](t, np), alloc[float64](t, np), alloc[float64](t, np)
	spSum, sgSum, term, loss := alloc[float64](t, np), alloc[float64](t, np), alloc[float64](t, n), alloc[float64](t, 1)
	p0, p1, p2 := alloc[float32](t, np), alloc[float32](t, np), alloc[float32](t, np)
	grad, badGrad := alloc[float32](t, n*r.d), upload(t, []int32{0})
	rows := grid1((np + 255) / 256)
	tau, eps, scale := r.p.Temperature, r.p.Margin(), r.p.Scale()
	supcon := r.p.Loss == kernels.SupCon
	scale2 := f32(float32(math.Log2E / tau))

	d.run("gather_rows", grid1(min((np*r.dp+255)/256, 4096)), ptr(z), ptr(order), i32(n), i32(r.d), i32(np), i32(r.dp), ptr(zs), ptr(badInput))
	d.run("contrastive_setup", rows, ptr(labels), i32(n), i32(np), ptr(positives), ptr(blockLo), ptr(blockHi))
	d.run("forward_"+r.precision, grid1(nb), ptr(zs), ptr(labels), i32(n), i32(r.dp), scale2,
		ptr(negMax), ptr(negSum), ptr(posMax), ptr(posSum), ptr(posSim))
	if supcon {
		d.run("supcon_rows", rows, ptr(negMax), ptr(negSum), ptr(posMax), ptr(posSum), ptr(posSim), ptr(positives),
			i32(n), i32(np), i32(r.anchors), f64(scale), ptr(term), ptr(p0), ptr(p1), ptr(p2))
	} else {
		d.run("sincere_u2", rows, ptr(negMax), ptr(negSum), i32(n), i32(np), f64(eps), ptr(u2))
		d.run("positives_"+r.precision, grid1(nb), ptr(zs), ptr(labels), i32(n), i32(r.dp), scale2, ptr(u2),
			ptr(blockLo), ptr(blockHi), ptr(spSum), ptr(sgSum))
		d.run("sincere_rows", rows, ptr(negMax), ptr(negSum), ptr(spSum), ptr(sgSum), ptr(u2), ptr(positives),
			i32(n), i32(np), i32(r.anchors), f64(scale), f64(eps), ptr(term), ptr(p0), ptr(p1), ptr(p2))
	}
	d.run("contrastive_loss", grid1(1), ptr(term), i32(n), f64(scale/float64(r.anchors)), ptr(loss))
	sc := 0
	if supcon {
		sc = 1
	}
	d.run(fmt.Sprintf("backward_%s_d%d", r.precision, r.width), [3]int{nb, (r.dp + r.width - 1) / r.width, 1},
		ptr(zs), ptr(labels), ptr(order), i32(n), i32(r.d), i32(r.dp), scale2, f32(float32(1/tau)), i32(sc),
		ptr(p0), ptr(p1), ptr(p2), ptr(grad), ptr(badGrad))
	if b := badInput.get()[0]; b != math.MaxUint64 {
		t.Fatalf("gather flagged input %d", b)
	}
	if b := badGrad.get()[0]; b != 0 {
		t.Fatal("backward flagged a non-finite gradient")
	}
	// The host's own derivations, for comparison: the positives and the
	// block ranges it used to compute.
	r.checkSetup(t, positives.get(), blockLo.get(), blockHi.get())
	return loss.get()[0], grad.get()
}

// checkSetup compares contrastive_setup's output with the host's rule.
func (r *lossRun) checkSetup(t *testing.T, positives, lo, hi []int32) {
	t.Helper()
	start := map[int32]int{}
	end := map[int32]int{}
	for k := range r.n {
		c := r.sorted[k]
		if _, ok := start[c]; !ok {
			start[c] = k
		}
		end[c] = k + 1
	}
	for k := range r.np {
		want := int32(0)
		if k < r.n {
			want = int32(end[r.sorted[k]] - start[r.sorted[k]] - 1)
		}
		if positives[k] != want {
			t.Fatalf("positives[%d] = %d, want %d", k, positives[k], want)
		}
	}
	for b := range r.nb {
		first, last := b*64, min(r.n, (b+1)*64)-1
		wantLo := int32(start[r.sorted[first]] / 64 * 64)
		wantHi := int32((end[r.sorted[last]] + 63) / 64 * 64)
		if lo[b] != wantLo || hi[b] != wantHi {
			t.Fatalf("block %d: columns [%d, %d), want [%d, %d)", b, lo[b], hi[b], wantLo, wantHi)
		}
	}
}

// lossTol: loss and gradient bounds per precision (DESIGN section 2: loss
// 1e-5; gradient 1e-4, 1e-3 on TF32 tensor cores).
var lossTol = map[string][2]float64{"fp32": {1e-5, 1e-4}, "tf32x3": {1e-5, 1e-4}, "tf32": {1e-3, 1e-3}}

func TestContrastiveLossOnDevice(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	type lossCase struct {
		p                      kernels.Params
		n, d, classes, singles int
	}
	cases := []lossCase{
		{kernels.Params{Loss: kernels.SupCon, Temperature: 0.1}, 5, 3, 2, 1},
		{kernels.Params{Loss: kernels.SupCon, Temperature: 0.1, BaseTemperature: 0.07}, 70, 40, 4, 2}, // a base temperature
		{kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1}, 9, 17, 3, 1},
		{kernels.Params{Loss: kernels.SINCERE, Temperature: 0.05}, 130, 33, 7, 3},
		{kernels.Params{Loss: kernels.EpsSupInfoNCE, Temperature: 0.1, Epsilon: 0.25}, 66, 64, 5, 0},
		{kernels.Params{Loss: kernels.SupCon, Temperature: 0.2}, 64, 128, 1, 0}, // one class: no negatives
	}
	errs := errTable{}
	for ci, cs := range cases {
		for pi, prec := range []string{"fp32", "tf32", "tf32x3"} {
			r := newLossRun(rng, cs.p, cs.n, cs.d, cs.classes, cs.singles, prec)
			name := fmt.Sprintf("%v n=%d d=%d classes=%d tau=%v %s", cs.p.Loss, cs.n, cs.d, cs.classes, cs.p.Temperature, prec)
			d := dev{t, (ci+pi)%2 == 1}
			loss, grad := r.run(t, d)
			wantLoss, wantGrad, _, err := kernels.Reference(r.p, wide(r.z), r.n, r.d, r.labels)
			if err != nil {
				t.Fatalf("%s: reference: %v", name, err)
			}
			errs.note("loss "+prec, checkClose(t, name+" loss", []float64{loss}, []float64{wantLoss}, lossTol[prec][0]))
			errs.note("gradient "+prec, checkClose(t, name+" gradient", grad, wantGrad, lossTol[prec][1]))
		}
	}
	errs.log(t)
}

func TestContrastiveLossSchedules(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	for _, kind := range []kernels.Loss{kernels.SupCon, kernels.SINCERE} {
		r := newLossRun(rng, kernels.Params{Loss: kind, Temperature: 0.1}, 150, 40, 6, 2, "tf32")
		l0, g0 := r.run(t, dev{t, false})
		l1, g1 := r.run(t, dev{t, true})
		if math.Float64bits(l0) != math.Float64bits(l1) {
			t.Fatalf("%v: loss %v in order, %v reversed", kind, l0, l1)
		}
		sameBits(t, kind.String()+" gradient on the two schedules", g0, g1)
	}
}
