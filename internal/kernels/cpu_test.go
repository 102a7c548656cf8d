package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/numcheck"
)

// Tolerances of DESIGN section 2 for the CPU engines.
const (
	lossTol = 1e-5
	gradTol = 1e-4
)

// engines returns the CPU engine variants every test runs: both kernel sets
// where the processor has the fast one, one and several workers, and tile
// sides that put sizes across tile boundaries.
func engines(t *testing.T) map[string]*CPU {
	t.Helper()
	out := map[string]*CPU{}
	for _, portable := range []bool{true, false} {
		for _, opt := range []CPUOptions{{Workers: 1, Tile: 48}, {Workers: 3, Tile: 96}, {Workers: 2, Tile: 192}, {Workers: 2}} {
			opt.Portable = portable
			e, err := NewCPU(opt)
			if err != nil {
				t.Fatal(err)
			}
			if !portable && e.Kernels() == "portable" {
				continue // no fast kernels on this processor
			}
			out[fmt.Sprintf("%s/w%d/t%d", e.Kernels(), opt.Workers, opt.Tile)] = e
		}
	}
	return out
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// worst tracks the largest errors a test saw, for its log.
type worst struct{ loss, grad float64 }

func (w *worst) add(loss, grad float64) {
	w.loss = max(w.loss, loss)
	w.grad = max(w.grad, grad)
}

func TestCPUMatchesGolden(t *testing.T) {
	cases := loadGolden(t)
	for name, e := range engines(t) {
		var w worst
		for _, c := range cases {
			grad := make([]float32, c.N*c.D)
			res, err := e.Compute(c.params(t), to32(c.Embeddings), c.N, c.D, c.Labels, grad)
			if err != nil {
				t.Fatalf("%s %s/%s: %v", name, c.Note, c.Loss, err)
			}
			le, ge := numcheck.RelErr(res.Loss, c.ExpectedLoss), numcheck.RelL2(grad, c.ExpectedGrad)
			w.add(le, ge)
			if le > lossTol || ge > gradTol {
				t.Errorf("%s %s/%s: loss %.9g want %.9g (rel %.2g), grad rel L2 %.2g",
					name, c.Note, c.Loss, res.Loss, c.ExpectedLoss, le, ge)
			}
		}
		t.Logf("%s: worst loss rel err %.2g, worst grad rel L2 %.2g", name, w.loss, w.grad)
	}
}

// randomBatch draws n unit rows of dimension d and labels from the given
// number of classes.
func randomBatch(rng *rand.Rand, n, d, classes int) ([]float64, []int) {
	z := make([]float64, n*d)
	labels := make([]int, n)
	for i := range n {
		var norm float64
		for k := range d {
			v := float64(float32(rng.NormFloat64()))
			z[i*d+k] = v
			norm += v * v
		}
		norm = math.Sqrt(norm)
		for k := range d {
			// float32-exact, so both engines see the same numbers.
			z[i*d+k] = float64(float32(z[i*d+k] / norm))
		}
		labels[i] = rng.IntN(classes) * 7 // sparse label values
	}
	return z, labels
}

// clustered pulls each row toward a per-class centre, so that similarities
// are large and the online log-sum-exp is exercised.
func clustered(rng *rand.Rand, z []float64, labels []int, d int, pull float64) {
	centres := map[int][]float64{}
	for i, y := range labels {
		c, ok := centres[y]
		if !ok {
			c = make([]float64, d)
			for k := range c {
				c[k] = rng.NormFloat64()
			}
			centres[y] = c
		}
		var norm float64
		row := z[i*d : (i+1)*d]
		for k := range row {
			row[k] += pull * c[k]
			norm += row[k] * row[k]
		}
		for k := range row {
			row[k] = float64(float32(row[k] / math.Sqrt(norm)))
		}
	}
}

// pulledBatch is randomBatch pulled toward class centres by pull (none when
// 0), in float64 and float32.
func pulledBatch(rng *rand.Rand, n, d, classes int, pull float64) ([]float64, []float32, []int) {
	z, labels := randomBatch(rng, n, d, classes)
	if pull > 0 {
		clustered(rng, z, labels, d, pull)
	}
	return z, to32(z), labels
}

func TestCPUMatchesReference(t *testing.T) {
	type shape struct {
		n, d, classes int
		tau           float64
		pull          float64
	}
	shapes := []shape{
		{1 + 1, 3, 1, 0.1, 0},  // N = 2, one class
		{3, 5, 2, 0.5, 0},      // N = 3
		{47, 17, 5, 0.07, 0},   // just under a tile
		{49, 16, 3, 0.1, 2},    // just over a tile
		{97, 33, 10, 0.02, 0},  // tau = 0.02
		{130, 8, 1, 0.1, 0},    // one class
		{150, 24, 140, 0.1, 0}, // most labels occur once
		{200, 64, 2, 0.02, 2},  // two tight classes, small tau
		{301, 128, 10, 0.1, 1}, // several blocks
		{64, 12, 4, 1.0, 0},    // large tau
	}
	rng := rand.New(rand.NewPCG(1, 2))
	engs := engines(t)
	var w worst
	for _, sh := range shapes {
		z, z32, labels := pulledBatch(rng, sh.n, sh.d, sh.classes, sh.pull)
		for _, l := range []Loss{SupCon, SINCERE, EpsSupInfoNCE} {
			p := Params{Loss: l, Temperature: sh.tau, Epsilon: 0.25}
			want, wantGrad, wantA, err := Reference(p, z, sh.n, sh.d, labels)
			if err != nil {
				if err == ErrNoAnchors {
					continue
				}
				t.Fatal(err)
			}
			for name, e := range engs {
				grad := make([]float32, sh.n*sh.d)
				for i := range grad {
					grad[i] = float32(math.NaN()) // every element must be written
				}
				res, err := e.Compute(p, z32, sh.n, sh.d, labels, grad)
				if err != nil {
					t.Fatalf("%s %v n=%d: %v", name, l, sh.n, err)
				}
				if res.Anchors != wantA {
					t.Errorf("%s %v n=%d: %d anchors, want %d", name, l, sh.n, res.Anchors, wantA)
				}
				le, ge := numcheck.RelErr(res.Loss, want), numcheck.RelL2(grad, wantGrad)
				tol := gradTol
				if sh.pull > 0 && l == SupCon {
					// In tight clusters SupCon's positive terms are
					// c (|P| softmax - 1) with |P| softmax near 1: the
					// float32 rounding of the dot products alone (the
					// float64 formulas fed float32 similarities) moves
					// the gradient by ~1e-4. Any float32 SupCon,
					// PyTorch's included, has this error.
					tol = 1e-3
				} else {
					w.add(le, ge)
				}
				if le > lossTol || ge > tol || math.IsNaN(ge) {
					t.Errorf("%s %v n=%d d=%d tau=%g: loss %.9g want %.9g (rel %.2g), grad rel L2 %.2g",
						name, l, sh.n, sh.d, sh.tau, res.Loss, want, le, ge)
				}
			}
		}
	}
	t.Logf("worst loss rel err %.2g, worst grad rel L2 %.2g", w.loss, w.grad)
}

func nan() float64 { return math.NaN() }

// badInput is a loss evaluation that must fail.
type badInput struct {
	name   string
	z      []float32
	n, d   int
	labels []int
	grad   []float32
	want   error // the error it wraps, when a particular one
}

// badInputs are the bad evaluations every engine must refuse.
func badInputs() []badInput {
	z := []float32{1, 0, 0, 1, 1, 0}
	return []badInput{
		{"no positives", z, 3, 2, []int{1, 2, 3}, nil, ErrNoAnchors},
		{"one row", z[:2], 1, 2, []int{1}, nil, ErrNoAnchors},
		{"label count", z, 3, 2, []int{1, 1}, nil, nil},
		{"short z", z[:5], 3, 2, []int{1, 1, 2}, nil, nil},
		{"NaN", []float32{1, float32(nan()), 0, 1, 1, 0}, 3, 2, []int{1, 1, 2}, nil, nil},
		{"Inf", []float32{1, float32(math.Inf(1)), 0, 1, 1, 0}, 3, 2, []int{1, 1, 2}, nil, nil},
		{"grad size", z, 3, 2, []int{1, 1, 2}, make([]float32, 5), nil},
		{"no rows", nil, 0, 2, nil, nil, nil},
	}
}

// checkRejects runs the bad inputs through an engine.
func checkRejects(t *testing.T, e Engine) {
	t.Helper()
	p := Params{Loss: SINCERE, Temperature: 0.1}
	for _, c := range badInputs() {
		_, err := e.Compute(p, c.z, c.n, c.d, c.labels, c.grad)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := e.Compute(Params{Loss: SupCon}, []float32{1, 0, 0, 1, 1, 0}, 3, 2, []int{1, 1, 2}, nil); err == nil {
		t.Error("temperature 0 accepted")
	}
}

func TestCPURejectsBadInput(t *testing.T) {
	e, err := NewCPU(CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkRejects(t, e)
}

// TestCPUForwardOnly checks that a nil gradient buffer gives the same loss.
func TestCPUForwardOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	z, labels := randomBatch(rng, 70, 9, 4)
	e, _ := NewCPU(CPUOptions{})
	for _, l := range []Loss{SupCon, SINCERE, EpsSupInfoNCE} {
		p := Params{Loss: l, Temperature: 0.2, Epsilon: 0.1}
		a, err := e.Compute(p, to32(z), 70, 9, labels, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := e.Compute(p, to32(z), 70, 9, labels, make([]float32, 70*9))
		if a != b {
			t.Errorf("%v: forward-only %+v, with gradient %+v", l, a, b)
		}
	}
}

// TestCPUIsDeterministic checks the claim that each row block is computed by
// one worker start to end: the bits do not depend on the number of workers.
func TestCPUIsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	z, labels := randomBatch(rng, 500, 24, 7)
	for _, l := range []Loss{SupCon, SINCERE} {
		p := Params{Loss: l, Temperature: 0.1}
		var first []float32
		var firstLoss float64
		for _, w := range []int{1, 2, 5} {
			e, _ := NewCPU(CPUOptions{Workers: w})
			grad := make([]float32, len(z))
			res, err := e.Compute(p, to32(z), 500, 24, labels, grad)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first, firstLoss = grad, res.Loss
				continue
			}
			if res.Loss != firstLoss {
				t.Errorf("%v: %d workers give loss %v, 1 worker %v", l, w, res.Loss, firstLoss)
			}
			for i := range grad {
				if grad[i] != first[i] {
					t.Fatalf("%v: %d workers differ at gradient element %d", l, w, i)
				}
			}
		}
	}
}

// TestOrderByLabel checks that the counting sort and the comparison sort
// give the same order: by label, ties by row.
func TestOrderByLabel(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct {
		n, lo, span int
	}{{1, 0, 1}, {50, 0, 3}, {1000, -20, 40}, {300, 1 << 40, 10}, {200, 0, 1 << 30}, {100, math.MinInt, 0}} {
		labels := make([]int, c.n)
		for i := range labels {
			labels[i] = c.lo
			if c.span > 0 {
				labels[i] += rng.IntN(c.span)
			}
		}
		if c.lo == math.MinInt {
			labels[7] = math.MaxInt // a span no counting sort can take
		}
		var st rowStats
		st.order = make([]int, c.n)
		st.orderByLabel(labels)
		for k := 1; k < c.n; k++ {
			a, b := st.order[k-1], st.order[k]
			if labels[a] > labels[b] || labels[a] == labels[b] && a >= b {
				t.Fatalf("n=%d lo=%d span=%d: rows %d (label %d) then %d (label %d)", c.n, c.lo, c.span, a, labels[a], b, labels[b])
			}
		}
		seen := make([]bool, c.n)
		for _, i := range st.order {
			if seen[i] {
				t.Fatalf("row %d twice", i)
			}
			seen[i] = true
		}
	}
}
