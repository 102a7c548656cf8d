package experiment

import (
	"bytes"
	"encoding/gob"
	"testing"

	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
)

// seedModel returns a small valid model file and checkpoint, gob-encoded.
func seedModel(f *testing.F) (model, ckpt []byte) {
	f.Helper()
	dev, err := cpu.NewDevice(kernels.CPUOptions{Workers: 1})
	if err != nil {
		f.Fatal(err)
	}
	cfg := encoder.Config{Arch: encoder.ArchMLP, Width: 0.01, Embedding: 3}
	m, err := encoder.New(dev, cfg, [3]int{1, 2, 2}, encoder.HeadProjection, 0, 1)
	if err != nil {
		f.Fatal(err)
	}
	w, err := m.Snapshot(false)
	if err != nil {
		f.Fatal(err)
	}
	wm, err := m.Snapshot(true)
	if err != nil {
		f.Fatal(err)
	}
	t := Trained{Format: checkpointFormat, Method: "sincere", Seed: 1, Dataset: "synthetic", Classes: []string{"a", "b"},
		Model: cfg, Input: m.Input, Head: m.Head, Mean: []float32{0.5}, Std: []float32{0.2}, Weights: w}
	c := Checkpoint{Format: checkpointFormat, Method: "sincere", Seed: 1, Epoch: 1, Batch: 2, Step: 7, EpochBatches: 2,
		EpochLoss: 3.5, MetricsBytes: 10, Weights: wm}
	if err := t.check(); err != nil {
		f.Fatal("seed model:", err)
	}
	if err := c.check(); err != nil {
		f.Fatal("seed checkpoint:", err)
	}
	if err := c.checkRun("sincere", 1, 3, 5); err != nil {
		f.Fatal("seed checkpoint:", err)
	}
	var a, b bytes.Buffer
	if err := gob.NewEncoder(&a).Encode(&t); err != nil {
		f.Fatal(err)
	}
	if err := gob.NewEncoder(&b).Encode(&c); err != nil {
		f.Fatal(err)
	}
	return a.Bytes(), b.Bytes()
}

// FuzzModelFile: no byte string makes the model-file decoder and its
// checks panic, and what passes them can be built within the limits.
func FuzzModelFile(f *testing.F) {
	model, _ := seedModel(f)
	f.Add(model)
	f.Add(model[:len(model)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Trained
		if err := decodeGob(bytes.NewReader(b), "model.gob", "model file", &m); err != nil {
			return
		}
		if m.check() != nil {
			return
		}
		if _, err := encoder.ParamCount(m.Model, m.Input, m.Head, m.NumClasses); err != nil {
			t.Fatalf("accepted a model beyond the limits: %v", err)
		}
	})
}

// FuzzCheckpoint: no byte string makes the checkpoint decoder and its
// checks panic, and what passes them has a position inside the run.
func FuzzCheckpoint(f *testing.F) {
	_, ckpt := seedModel(f)
	f.Add(ckpt)
	f.Add(ckpt[:len(ckpt)-5])
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Checkpoint
		if err := decodeGob(bytes.NewReader(b), "checkpoint.gob", "checkpoint", &c); err != nil {
			return
		}
		if c.check() != nil || c.checkRun("sincere", 1, 3, 5) != nil {
			return
		}
		if c.Epoch < 0 || c.Epoch > 3 || c.Batch < 0 || c.Batch > 5 || c.Step != c.Epoch*5+c.Batch || c.MetricsBytes < 0 {
			t.Fatalf("accepted checkpoint at epoch %d, batch %d, step %d, %d metrics bytes", c.Epoch, c.Batch, c.Step, c.MetricsBytes)
		}
	})
}
