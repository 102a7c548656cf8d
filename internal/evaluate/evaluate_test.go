package evaluate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
)

// clusters draws n unit rows of dimension d around one centre per class,
// with labels i % classes.
func clusters(rng *rand.Rand, n, d, classes int, spread float64) ([]float32, []int) {
	centres := make([][]float64, classes)
	for c := range centres {
		centres[c] = make([]float64, d)
		for j := range d {
			centres[c][j] = rng.NormFloat64()
		}
	}
	x, y := make([]float32, n*d), make([]int, n)
	for i := range n {
		y[i] = i % classes
		var norm float64
		v := make([]float64, d)
		for j := range d {
			v[j] = centres[y[i]][j] + spread*rng.NormFloat64()
			norm += v[j] * v[j]
		}
		for j := range d {
			x[i*d+j] = float32(v[j] / math.Sqrt(norm))
		}
	}
	return x, y
}

func TestNeighboursMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	d := 12
	all, labels := clusters(rng, 5300, d, 4, 1.5) // one set of centres
	refs, refLabels := all[:5000*d], labels[:5000]
	qs, qLabels := all[5000*d:], labels[5000:]
	nb, err := FindNeighbours(testDevice(t), qs, qLabels, refs, refLabels, d, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range qLabels {
		best, bestSame, bestOther := float32(-2), float32(-2), float32(-2)
		bestLabel := -1
		for r := range refLabels {
			var s float32
			for j := range d {
				s += qs[i*d+j] * refs[r*d+j]
			}
			if s > best {
				best, bestLabel = s, refLabels[r]
			}
			if refLabels[r] == qLabels[i] {
				bestSame = max(bestSame, s)
			} else {
				bestOther = max(bestOther, s)
			}
		}
		if math.Abs(float64(best-nb.Sim[i*5])) > 1e-5 || bestLabel != int(nb.Label[i*5]) {
			t.Fatalf("query %d: nearest %v (%d), found %v (%d)", i, best, bestLabel, nb.Sim[i*5], nb.Label[i*5])
		}
		if math.Abs(float64(bestSame-nb.Target[i])) > 1e-5 || math.Abs(float64(bestOther-nb.Noise[i])) > 1e-5 {
			t.Fatalf("query %d: target/noise %v %v, want %v %v", i, nb.Target[i], nb.Noise[i], bestSame, bestOther)
		}
		for j := 1; j < 5; j++ {
			if nb.Sim[i*5+j] > nb.Sim[i*5+j-1] {
				t.Fatalf("query %d: neighbours out of order", i)
			}
		}
	}
	acc1 := mean(Correct(nb.Predict1(), qLabels))
	acc5 := mean(Correct(nb.PredictWeighted(), qLabels))
	if acc1 < 0.5 || acc5 < acc1-0.05 {
		t.Errorf("kNN accuracies %v (1-NN) and %v (5-NN) on separable clusters", acc1, acc5)
	}
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func TestWeightedVote(t *testing.T) {
	// Two neighbours of class 1 (0.5 + 0.45) outvote a nearer one of class 0 (0.9).
	nb := &Neighbours{K: 3, Sim: []float32{0.9, 0.5, 0.45}, Label: []int32{0, 1, 1}, Target: []float32{0}, Noise: []float32{0}}
	if p := nb.PredictWeighted(); p[0] != 1 {
		t.Errorf("weighted vote %v, want 1", p)
	}
	if p := nb.Predict1(); p[0] != 0 {
		t.Errorf("1-NN %v, want 0", p)
	}
}

func TestBootstrap(t *testing.T) {
	v := make([]float64, 2000)
	for i := range v {
		if i%4 != 0 {
			v[i] = 1
		}
	}
	iv := Bootstrap(len(v), 1000, 1, MeanOf(v))
	// Binomial: 0.75 +- 1.96 sqrt(0.75 0.25 / 2000) = 0.75 +- 0.019.
	if iv.Value != 0.75 || math.Abs(iv.Low-0.731) > 0.006 || math.Abs(iv.High-0.769) > 0.006 {
		t.Errorf("interval %+v, want about [0.731, 0.769]", iv)
	}
	if again := Bootstrap(len(v), 1000, 1, MeanOf(v)); again != iv {
		t.Error("same seed, different interval")
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median %v", m)
	}
}

func TestLinearProbeLearnsSeparableClasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	d, classes := 16, 5
	train, trainLabels := clusters(rng, 2000, d, classes, 0.8)
	test, testLabels := clusters(rand.New(rand.NewPCG(73, 74)), 2000, d, classes, 0.8) // same centres
	pred, err := LinearProbe(train, trainLabels, test, d, classes, LinearOptions{Epochs: 10, Batch: 128, LR: 0.1, L2: 1e-4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	acc := mean(Correct(pred, testLabels))
	if acc < 0.9 {
		t.Errorf("linear probe accuracy %v on separable clusters", acc)
	}
	t.Logf("linear probe accuracy %.3f", acc)
	if _, err := LinearProbe(train, trainLabels, test, d, classes, LinearOptions{Epochs: 0, Batch: 1, LR: 1}); err == nil {
		t.Error("zero epochs accepted")
	}
}

func TestMeanCosine(t *testing.T) {
	same := []float32{1, 0, 1, 0, 1, 0}
	if c := MeanCosine(same, 2); math.Abs(c-1) > 1e-12 {
		t.Errorf("identical rows: %v", c)
	}
	opposite := []float32{1, 0, -1, 0}
	if c := MeanCosine(opposite, 2); math.Abs(c+1) > 1e-12 {
		t.Errorf("opposite rows: %v", c)
	}
	orth := []float32{1, 0, 0, 1}
	if c := MeanCosine(orth, 2); math.Abs(c) > 1e-12 {
		t.Errorf("orthogonal rows: %v", c)
	}
}

// testDevice returns a CPU device for the similarity products.
func testDevice(t *testing.T) kernels.Device {
	t.Helper()
	dev, err := cpu.NewDevice(kernels.CPUOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return dev
}
