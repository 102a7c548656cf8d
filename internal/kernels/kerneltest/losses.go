package kerneltest

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// Bounds of DESIGN section 2 for a float32 loss engine against the float64
// reference.
const (
	LossTol = 1e-5
	GradTol = 1e-4
)

// GoldenDir is the folder of the golden loss values (losses.json and the
// .npy cases of npy/manifest.json), computed from a float64 implementation
// that matches the authors' code to 1e-15.
func GoldenDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "golden")
}

// GoldenCase is one entry of losses.json.
type GoldenCase struct {
	Note         string    `json:"note"`
	Loss         string    `json:"loss"`
	Temperature  float64   `json:"temperature"`
	Epsilon      float64   `json:"epsilon"`
	N            int       `json:"n"`
	D            int       `json:"d"`
	Labels       []int     `json:"labels"`
	Embeddings   []float64 `json:"embeddings"`
	ExpectedLoss float64   `json:"expected_loss"`
	ExpectedGrad []float64 `json:"expected_grad"`
}

// Params returns the case's loss parameters.
func (c GoldenCase) Params(t *testing.T) kernels.Params {
	t.Helper()
	l, err := kernels.ParseLoss(c.Loss)
	if err != nil {
		t.Fatal(err)
	}
	return kernels.Params{Loss: l, Temperature: c.Temperature, Epsilon: c.Epsilon}
}

// LoadGolden reads losses.json; the golden values are part of the
// repository, so a missing file fails the test.
func LoadGolden(t *testing.T) []GoldenCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(GoldenDir(), "losses.json"))
	if err != nil {
		t.Fatalf("golden values: %v", err)
	}
	var doc struct {
		Cases []GoldenCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse losses.json: %v", err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("losses.json holds no cases")
	}
	return doc.Cases
}

// Batch returns n random unit rows of d values (float32-exact, so that
// engines and references see the same numbers) with labels from classes
// classes (sparse label values).
func Batch(rng *rand.Rand, n, d, classes int) ([]float64, []int) {
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
			z[i*d+k] = float64(float32(z[i*d+k] / norm))
		}
		labels[i] = rng.IntN(classes) * 7
	}
	return z, labels
}

// PulledBatch is Batch pulled toward per-class centres by pull (none when
// 0), so that similarities are large and the online log-sum-exp is
// exercised; in float64 and float32.
func PulledBatch(rng *rand.Rand, n, d, classes int, pull float64) ([]float64, []float32, []int) {
	z, labels := Batch(rng, n, d, classes)
	if pull > 0 {
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
	return z, Float32s(z), labels
}

// badInput is a loss evaluation that must fail.
type badInput struct {
	name   string
	z      []float32
	n, d   int
	labels []int
	grad   []float32
	want   error // the error it wraps, when a particular one
}

// CheckRejects runs the evaluations every loss engine must refuse: no
// anchors, wrong counts and sizes, NaN and Inf, a bad temperature.
func CheckRejects(t *testing.T, e kernels.LossEngine) {
	t.Helper()
	z := []float32{1, 0, 0, 1, 1, 0}
	nan := float32(math.NaN())
	for _, c := range []badInput{
		{"no positives", z, 3, 2, []int{1, 2, 3}, nil, kernels.ErrNoAnchors},
		{"one row", z[:2], 1, 2, []int{1}, nil, kernels.ErrNoAnchors},
		{"label count", z, 3, 2, []int{1, 1}, nil, nil},
		{"short z", z[:5], 3, 2, []int{1, 1, 2}, nil, nil},
		{"NaN", []float32{1, nan, 0, 1, 1, 0}, 3, 2, []int{1, 1, 2}, nil, nil},
		{"Inf", []float32{1, float32(math.Inf(1)), 0, 1, 1, 0}, 3, 2, []int{1, 1, 2}, nil, nil},
		{"grad size", z, 3, 2, []int{1, 1, 2}, make([]float32, 5), nil},
		{"no rows", nil, 0, 2, nil, nil, nil},
	} {
		_, err := e.Compute(kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1}, c.z, c.n, c.d, c.labels, c.grad)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := e.Compute(kernels.Params{Loss: kernels.SupCon}, z, 3, 2, []int{1, 1, 2}, nil); err == nil {
		t.Error("temperature 0 accepted")
	}
}

// Float32s returns v rounded to float32.
func Float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// Worst tracks the largest loss and gradient errors a test saw, for its
// log.
type Worst struct{ Loss, Grad float64 }

// Add takes one case's errors.
func (w *Worst) Add(loss, grad float64) {
	w.Loss = max(w.Loss, loss)
	w.Grad = max(w.Grad, grad)
}
