package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
)

// tinyConfig is a small run on the synthetic data set: 600 images, a
// narrow CNN, two epochs of 15 batches.
func tinyConfig(t *testing.T, extra ...string) Config {
	t.Helper()
	sets := append([]string{
		"name=tiny", "data.dataset=synthetic", "data.subset=600", "data.workers=2",
		"model.width=0.25", "model.embedding=16",
		"train.epochs=2", "train.batch_size=40", "train.lr=0.05", "train.warmup_steps=5",
		"train.log_every=5", "train.checkpoint_every=7", "train.device=cpu",
	}, extra...)
	c, err := Load("", "sincere", sets)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readMetrics(t *testing.T, dir string) []metric {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []metric
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m metric
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestPretrainLossFallsAndRunDirIsComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	for _, method := range []string{"sincere", "ce"} {
		c := tinyConfig(t)
		dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: method, Seed: 1, Out: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{ConfigFile, MetricsFile, CheckpointFile, ModelFile} {
			if !fileExists(filepath.Join(dir, f)) {
				t.Errorf("%s: run directory lacks %s", method, f)
			}
		}
		var epochs []metric
		steps := 0
		for _, m := range readMetrics(t, dir) {
			switch m.Event {
			case "epoch":
				epochs = append(epochs, m)
			case "step":
				steps++
				if m.LR <= 0 || m.ImagesPerSec <= 0 {
					t.Errorf("%s: step metric %+v", method, m)
				}
			}
		}
		if len(epochs) != 2 || steps != 6 {
			t.Fatalf("%s: %d epoch and %d step lines, want 2 and 6", method, len(epochs), steps)
		}
		if !(epochs[1].Loss < epochs[0].Loss) {
			t.Errorf("%s: loss did not fall: %v then %v", method, epochs[0].Loss, epochs[1].Loss)
		}
		t.Logf("%s: epoch losses %.4f -> %.4f", method, epochs[0].Loss, epochs[1].Loss)
		m, err := LoadTrained(filepath.Join(dir, ModelFile))
		if err != nil || m.Method != method || len(m.Mean) != 1 || len(m.Weights.Params) == 0 {
			t.Fatalf("%s: model file %+v, %v", method, m, err)
		}
		// The finished run is not overwritten; --resume finds it done.
		out := filepath.Dir(filepath.Dir(dir))
		if _, err := Pretrain(context.Background(), c, PretrainOptions{Method: method, Seed: 1, Out: out}); err == nil {
			t.Errorf("%s: a second run over a finished one succeeded", method)
		}
		// --resume with a change to its training is refused; with a change
		// that does not touch training (the probe's settings, the seed
		// list) it keeps the run and records the new settings.
		if _, err := Pretrain(context.Background(), tinyConfig(t, "train.lr=0.07"), PretrainOptions{Method: method, Seed: 1, Out: out, Resume: true}); err == nil || !strings.Contains(err.Error(), "configuration changed") {
			t.Errorf("%s: resume of a finished run with another lr: %v", method, err)
		}
		c2 := tinyConfig(t, "probe.linear_epochs=3", "seeds=[1, 2]")
		if _, err := Pretrain(context.Background(), c2, PretrainOptions{Method: method, Seed: 1, Out: out, Resume: true}); err != nil {
			t.Errorf("%s: resume of a finished run with other probe settings: %v", method, err)
		}
		if got, err := readRunConfig(filepath.Join(dir, ConfigFile)); err != nil || got.Probe.LinearEpochs != 3 {
			t.Errorf("%s: config.yaml after a probe-only change: %+v, %v", method, got.Probe, err)
		}
	}
}

// cancelAfter cancels the run's context after n steps.
type cancelAfter struct {
	nopReporter
	n, seen int
	cancel  context.CancelFunc
}

func (c *cancelAfter) Step(int, float64, float64, float64) {
	if c.seen++; c.seen == c.n {
		c.cancel()
	}
}

func TestInterruptThenResumeGivesTheSameWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	c := tinyConfig(t)
	ref, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 3, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want, err := LoadTrained(filepath.Join(ref, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, stopAt := range []int{4, 15, 22} { // mid-epoch, epoch end, second epoch
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Pretrain(ctx, c, PretrainOptions{Method: "sincere", Seed: 3, Out: out, Resume: true,
			Reporter: &cancelAfter{n: stopAt - prevSteps(t, out, c), cancel: cancel}})
		cancel()
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("stop at %d: %v", stopAt, err)
		}
	}
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 3, Out: out, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadTrained(filepath.Join(dir, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := got.Weights.Equal(want.Weights); !ok {
		t.Fatalf("resumed run differs from the uninterrupted one: %s", diff)
	}
	// The metrics were not repeated by the resumptions.
	if a, b := readMetrics(t, ref), readMetrics(t, dir); len(a) != len(b) {
		t.Errorf("uninterrupted run logged %d lines, resumed run %d", len(a), len(b))
	}
	// A changed configuration is refused.
	c2 := tinyConfig(t, "train.lr=0.07")
	os.Remove(filepath.Join(dir, ModelFile))
	if _, err := Pretrain(context.Background(), c2, PretrainOptions{Method: "sincere", Seed: 3, Out: out, Resume: true}); err == nil || !strings.Contains(err.Error(), "configuration changed") {
		t.Errorf("changed config on resume: %v", err)
	}
	if _, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 3, Out: out}); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("a new run over an unfinished one: %v", err)
	}
}

// prevSteps returns the steps a run's checkpoint holds (0 without one).
func prevSteps(t *testing.T, out string, c Config) int {
	ck, err := loadCheckpoint(filepath.Join(RunDir(out, c.Name, "sincere", 3), CheckpointFile))
	if err != nil {
		return 0
	}
	return ck.Step
}

func TestNaNStopsTheRunAndKeepsTheCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	c := tinyConfig(t, "train.lr=1e30", "train.warmup_steps=0", "train.checkpoint_every=1", "train.weight_decay=0")
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "step ") || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("a diverging run: %v", err)
	}
	ck, cerr := loadCheckpoint(filepath.Join(dir, CheckpointFile))
	if cerr != nil {
		t.Fatalf("no checkpoint after the failure: %v (%v)", cerr, err)
	}
	if Finished(dir) {
		t.Error("a failed run wrote its final model")
	}
	t.Logf("%v; checkpoint at step %d", err, ck.Step)
}

func TestLearningRateSchedule(t *testing.T) {
	tc := TrainConfig{LR: 1, WarmupSteps: 4, MinLRRatio: 1e-3}
	if lr := learningRate(tc, 0, 100); lr != 0.25 {
		t.Errorf("first warm-up step %v", lr)
	}
	if lr := learningRate(tc, 4, 100); lr != 1 {
		t.Errorf("first cosine step %v", lr)
	}
	if lr := learningRate(tc, 99, 100); lr < 0.00099 || lr > 0.00101 {
		t.Errorf("last step %v, want lr * 1e-3", lr)
	}
	prev := 2.0
	for s := 4; s < 100; s++ {
		lr := learningRate(tc, s, 100)
		if lr > prev {
			t.Fatalf("rate rose at step %d", s)
		}
		prev = lr
	}
}

// TestStepsAllocateNothing checks the device contract for training: after
// the first step, a step allocates no device memory (the device counts
// every allocation, its own scratch included), and a bad step is caught at
// the step's one sync with the weights left as they were.
func TestStepsAllocateNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	for _, method := range []string{"sincere", "ce"} {
		tr, err := NewTrainer(context.Background(), tinyConfig(t), method, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		dev, l := tr.Device(), tr.Loader()
		b := l.NewBatch()
		var first kernels.MemStats
		for step := range 5 {
			l.Fill(0, step, b)
			if _, err := tr.Step(b, 0.05); err != nil {
				t.Fatal(err)
			}
			if step == 0 {
				first = dev.MemStats()
				continue
			}
			if s := dev.MemStats(); s.Allocs != first.Allocs || s.InUse != first.InUse {
				t.Errorf("%s step %d allocated: %+v after the first step, %+v now", method, step+1, first, s)
			}
		}
		if g := tr.Last().GradNorm; !(g > 0) {
			t.Errorf("%s: gradient norm %v", method, g)
		}
		// An infinite learning rate ruins the weights; the next step's loss
		// is then NaN: the step fails and its update is skipped on the
		// device, so the weights are what the failing step found.
		if _, err := tr.Step(b, math.Inf(1)); err != nil {
			t.Fatal(err)
		}
		before := bits(t, tr)
		if _, err := tr.Step(b, 0.05); err == nil || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("%s: a step on ruined weights: %v", method, err)
		}
		if !slices.Equal(before, bits(t, tr)) {
			t.Errorf("%s: the failing step changed the weights", method)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// bits returns the bits of every weight of a trainer's model.
func bits(t *testing.T, tr *Trainer) []uint32 {
	t.Helper()
	s, err := tr.Model().Snapshot(true)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, list := range [][]encoder.Array{s.Params, s.Momentum} {
		for _, a := range list {
			for _, v := range a.Values {
				out = append(out, math.Float32bits(v))
			}
		}
	}
	return out
}
