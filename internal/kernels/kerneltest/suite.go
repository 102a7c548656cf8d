// Package kerneltest is the conformance suite of kernels.Device: written once
// against the interface, it checks every method of a backend against plain
// float64 references on random inputs of awkward sizes (1, primes, sizes
// that straddle the kernels' tiles, every convolution geometry the encoders
// use), the accumulate-versus-overwrite rule, the aliasing the interface
// allows, errors on bad sizes, determinism, the memory and timer contract,
// layers and whole training steps of each encoder against the gorgonia
// oracle, and that a steady-state step allocates nothing. Every backend's
// tests call Run with their own tolerances; the same code runs on the CPU,
// on the CUDA kernels in the emulator and on a GPU.
//
// It also loads the golden loss values (testdata/golden) that the loss
// engines' tests share.
package kerneltest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

// Tolerances bound a backend's errors against the float64 references: the
// relative L2 error of a whole output, per family of methods.
type Tolerances struct {
	// Elementwise covers copies, fills, ReLU, additions, biases, pooling
	// and SGD: float32 rounding of one or two operations.
	Elementwise float64
	// Product covers Gemm and the convolution's three products, whose
	// values sum many products (and round operands on TF32 tensor cores).
	Product float64
	// Norm covers batch norm, L2 normalisation, the cross entropy and the
	// sum of squares.
	Norm float64
	// Loss and LossGrad cover the fused contrastive loss's value and
	// gradient.
	Loss, LossGrad float64
	// Layer and Step cover a layer's and a whole training step's
	// gradients against the gorgonia oracle.
	Layer, Step float64
}

// CPUTolerances are the bounds of a float32 backend that accumulates in
// float32 or better: what the CPU device meets.
func CPUTolerances() Tolerances {
	return Tolerances{Elementwise: 1e-6, Product: 1e-5, Norm: 1e-5, Loss: LossTol, LossGrad: GradTol, Layer: 1e-4, Step: 1e-3}
}

// Options configure a run of the suite.
type Options struct {
	// Tol are the backend's error bounds.
	Tol Tolerances
	// Small shrinks the problem sizes, for a slow backend (the CPU
	// emulator of the CUDA kernels); the awkward sizes stay.
	Small bool
}

// NewDevice opens a fresh device of the backend under test.
type NewDevice func(t *testing.T) kernels.Device

// Run runs the whole suite, one subtest per method or property.
func Run(t *testing.T, open NewDevice, o Options) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, NewDevice, Options)
	}{
		{"Memory", testMemory},
		{"Errors", testErrors},
		{"Timer", testTimer},
		{"CopyFill", testCopyFill},
		{"Gemm", testGemm},
		{"BiasAndSumRows", testBias},
		{"Conv2D", testConv},
		{"BatchNorm", testBatchNorm},
		{"Elementwise", testElementwise},
		{"GlobalAvgPool", testPool},
		{"L2Normalize", testL2},
		{"SoftmaxCrossEntropy", testCrossEntropy},
		{"ContrastiveLoss", testContrastive},
		{"SumSquaresAndSGD", testSGD},
		{"Determinism", testDeterminism},
		{"Layers", testLayers},
		{"TrainingStep", testSteps},
		{"SteadyState", testSteadyState},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open, o) })
	}
}

// fixture is one subtest's device, arena of scratch buffers and random
// source.
type fixture struct {
	t     *testing.T
	dev   kernels.Device
	arena *kernels.Arena
	rng   *rand.Rand
}

// arenaBytes is the scratch each fixture allocates.
const arenaBytes = 96 << 20

func newFixture(t *testing.T, open NewDevice, seed uint64) *fixture {
	t.Helper()
	dev := open(t)
	a, err := kernels.NewArena(dev, "conformance", arenaBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Free(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{t: t, dev: dev, arena: a, rng: rand.New(rand.NewPCG(seed, 1+seed))}
}

// buf returns a device buffer holding v.
func (f *fixture) buf(v []float32) kernels.Buffer {
	f.t.Helper()
	b, err := f.arena.Take(len(v))
	if err != nil {
		f.t.Fatal(err)
	}
	f.dev.Upload(b, v)
	return b
}

// poisoned returns a device buffer of n NaNs: an output that must be
// written everywhere.
func (f *fixture) poisoned(n int) kernels.Buffer { return f.buf(numcheck.NaNs(n)) }

// ints returns a device array holding v.
func (f *fixture) ints(v []int) kernels.Ints {
	f.t.Helper()
	b, err := f.arena.TakeInts(len(v))
	if err != nil {
		f.t.Fatal(err)
	}
	w := make([]int32, len(v))
	for i, x := range v {
		w[i] = int32(x)
	}
	f.dev.UploadInts(b, w)
	return b
}

// scalars returns n device scalars.
func (f *fixture) scalars(n int) kernels.Scalars {
	f.t.Helper()
	s, err := f.arena.TakeScalars(n)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// get downloads a buffer, failing the test on a device failure.
func (f *fixture) get(b kernels.Buffer) []float32 {
	f.t.Helper()
	out := make([]float32, b.Len())
	if err := f.dev.Download(out, b); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// read downloads scalars.
func (f *fixture) read(s kernels.Scalars) []float64 {
	f.t.Helper()
	out := make([]float64, s.Len())
	if err := f.dev.ReadScalars(out, s); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// sync fails the test on a device failure.
func (f *fixture) sync() {
	f.t.Helper()
	if err := f.dev.Sync(); err != nil {
		f.t.Fatal(err)
	}
}

// vec returns n uniform values in [lo, hi).
func (f *fixture) vec(n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*f.rng.Float64())
	}
	return v
}

// reset gives the arena's space back between cases.
func (f *fixture) reset() { f.arena.Reset() }

// relL2 is ||got - want|| / ||want|| (numcheck.RelL2), NaN when got holds a
// NaN or an Inf (so that an unwritten, poisoned output fails any bound).
func relL2(got []float32, want []float64) float64 {
	for _, g := range got[:len(want)] {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			return math.NaN()
		}
	}
	return numcheck.RelL2(got, want)
}

// within fails the test unless err <= tol (a NaN error never is).
func within(t *testing.T, what string, err, tol float64) {
	t.Helper()
	if !(err <= tol) {
		t.Errorf("%s: relative error %.3g, bound %.3g", what, err, tol)
	}
}

// pick returns the first n values of a size list when small is set.
func pick(small bool, all []int, n int) []int {
	if small && len(all) > n {
		return all[:n]
	}
	return all
}
