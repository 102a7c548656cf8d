package experiment

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/regfile"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// Files of a run directory.
const (
	ConfigFile     = "config.yaml"
	MetricsFile    = "metrics.jsonl"
	CheckpointFile = "checkpoint.gob"
	ModelFile      = "model.gob"
)

// checkpointFormat versions the checkpoint layout.
const checkpointFormat = 1

// Checkpoint is everything a run needs to continue exactly where it
// stopped: weights, momentum and running statistics, the position in the
// sampling order (the sampler and the augmentations are functions of the
// seed, the epoch and the batch index, so that is their whole state), the
// running sums of the epoch's metrics, and how much of metrics.jsonl they
// cover.
type Checkpoint struct {
	Format       int
	ConfigDigest string
	Method       string
	Seed         uint64
	// Epoch and Batch are the next batch to train on; Step counts the
	// optimiser steps taken.
	Epoch, Batch, Step int
	Weights            encoder.Snapshot
	// EpochLoss and EpochBatches accumulate the current epoch's mean loss.
	EpochLoss    float64
	EpochBatches int
	// MetricsBytes is the length of metrics.jsonl at this point.
	MetricsBytes int64
}

// writeGob writes v to path as gob, atomically.
func writeGob(path string, v any) error {
	return atomicfile.WriteFunc(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := gob.NewEncoder(bw).Encode(v); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// maxGobBytes bounds a checkpoint, model or outcomes file (16 GiB).
const maxGobBytes = 1 << 34

// readGob decodes the gob file path (a regular file) into v; what names the
// kind of file in the error for a corrupt one. Gob grows what it decodes
// as the data arrives, so a length the file merely claims allocates
// nothing; what it decodes is then checked by the caller.
func readGob(path, what string, v any) error {
	f, size, err := regfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if size > maxGobBytes {
		return fmt.Errorf("%s: %d bytes, more than the %d a %s may have", path, size, int64(maxGobBytes), what)
	}
	return decodeGob(bufio.NewReader(f), path, what, v)
}

// decodeGob decodes one gob value from r into v.
func decodeGob(r io.Reader, path, what string, v any) error {
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("%s: corrupt %s: %v", path, what, err)
	}
	return nil
}

// save writes the checkpoint atomically.
func (c *Checkpoint) save(path string) error { return writeGob(path, c) }

// loadCheckpoint reads a checkpoint file and checks what it can without the
// run: the format, the counters and the weights.
func loadCheckpoint(path string) (*Checkpoint, error) {
	var c Checkpoint
	if err := readGob(path, "checkpoint", &c); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// check validates a decoded checkpoint on its own: format, non-negative
// counters, a finite loss sum, and finite weights with their momentum.
func (c *Checkpoint) check() error {
	switch {
	case c.Format != checkpointFormat:
		return fmt.Errorf("checkpoint format %d, this sincere reads %d", c.Format, checkpointFormat)
	case c.Epoch < 0 || c.Batch < 0 || c.Step < 0 || c.EpochBatches < 0 || c.MetricsBytes < 0:
		return fmt.Errorf("corrupt checkpoint: negative position (epoch %d, batch %d, step %d, %d batches, %d bytes of metrics)",
			c.Epoch, c.Batch, c.Step, c.EpochBatches, c.MetricsBytes)
	case c.EpochBatches != c.Batch:
		return fmt.Errorf("corrupt checkpoint: %d batches summed at batch %d", c.EpochBatches, c.Batch)
	case math.IsNaN(c.EpochLoss) || math.IsInf(c.EpochLoss, 0):
		return fmt.Errorf("corrupt checkpoint: the epoch's loss sum is %v", c.EpochLoss)
	case len(c.Weights.Momentum) != len(c.Weights.Params):
		return fmt.Errorf("corrupt checkpoint: momentum for %d of %d parameters", len(c.Weights.Momentum), len(c.Weights.Params))
	}
	return checkFinite(c.Weights)
}

// checkRun validates a checkpoint against the run it is to continue: its
// method and seed, and a position within the run's epochs of perEpoch
// batches that its step count agrees with.
func (c *Checkpoint) checkRun(method string, seed uint64, epochs, perEpoch int) error {
	switch {
	case c.Method != method || c.Seed != seed:
		return fmt.Errorf("the checkpoint is of %s seed %d, not %s seed %d", c.Method, c.Seed, method, seed)
	case c.Epoch > epochs || (c.Epoch == epochs && c.Batch != 0):
		return fmt.Errorf("corrupt checkpoint: epoch %d batch %d, past the run's %d epochs", c.Epoch+1, c.Batch, epochs)
	case perEpoch > 0 && c.Batch > perEpoch: // == when stopped after an epoch's last batch
		return fmt.Errorf("corrupt checkpoint: batch %d of epochs of %d batches", c.Batch, perEpoch)
	case perEpoch > 0 && int64(c.Step) != int64(c.Epoch)*int64(perEpoch)+int64(c.Batch):
		return fmt.Errorf("corrupt checkpoint: step %d at epoch %d, batch %d (epochs of %d batches)", c.Step, c.Epoch+1, c.Batch, perEpoch)
	}
	return nil
}

// checkFinite refuses NaN or infinite weights, momentum or statistics.
func checkFinite(s encoder.Snapshot) error {
	for _, part := range []struct {
		what string
		list []encoder.Array
	}{{"parameter", s.Params}, {"momentum of", s.Momentum}, {"statistic", s.States}} {
		for _, a := range part.list {
			for i, v := range a.Values {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("%s %s holds %v at index %d: the weights are not finite", part.what, a.Name, v, i)
				}
			}
		}
	}
	return nil
}

// Trained is a finished run's model file: the network and what evaluation
// needs to feed it (the input shape and normalisation, the class names).
type Trained struct {
	Format     int
	Method     string
	Seed       uint64
	Dataset    string
	Classes    []string
	Model      encoder.Config
	Input      [3]int
	Head       string
	NumClasses int
	Mean, Std  []float32
	Weights    encoder.Snapshot
}

// save writes the model file atomically.
func (t *Trained) save(path string) error { return writeGob(path, t) }

// LoadTrained reads a run's model file and checks it on its own (see
// Trained.check); probe checks it against the run's configuration too.
func LoadTrained(path string) (*Trained, error) {
	var t Trained
	if err := readGob(path, "model file", &t); err != nil {
		return nil, err
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// check validates every field of a decoded model file before anything is
// built from it: the format, a known method with its head, a valid model
// configuration, a plausible input shape and class list, finite
// normalisation constants, a parameter count within encoder.MaxParams
// (computed from the shapes, nothing allocated) and finite weights.
func (t *Trained) check() error {
	head := encoder.HeadProjection
	if !isContrastive(t.Method) {
		head = encoder.HeadClassifier
	}
	c, h, w := t.Input[0], t.Input[1], t.Input[2]
	switch {
	case t.Format != checkpointFormat:
		return fmt.Errorf("model format %d, this sincere reads %d", t.Format, checkpointFormat)
	case !slices.Contains(Methods(), t.Method):
		return fmt.Errorf("corrupt model file: unknown method %q", t.Method)
	case t.Head != head:
		return fmt.Errorf("corrupt model file: a %s head for method %s", t.Head, t.Method)
	case c < 1 || c > maxModelChannels || h < 1 || h > sizes.MaxImageSide || w < 1 || w > sizes.MaxImageSide:
		return fmt.Errorf("corrupt model file: input of %dx%dx%d (want 1 to %d channels of 1 to %d pixels a side)", c, h, w, maxModelChannels, sizes.MaxImageSide)
	case len(t.Classes) < 2 || len(t.Classes) > maxModelClasses:
		return fmt.Errorf("corrupt model file: %d classes (want 2 to %d)", len(t.Classes), maxModelClasses)
	case head == encoder.HeadClassifier && t.NumClasses != len(t.Classes), head == encoder.HeadProjection && t.NumClasses != 0:
		return fmt.Errorf("corrupt model file: %d outputs for %d classes and a %s head", t.NumClasses, len(t.Classes), t.Head)
	case len(t.Mean) != c || len(t.Std) != c:
		return fmt.Errorf("corrupt model file: %d means and %d deviations for %d channels", len(t.Mean), len(t.Std), c)
	}
	for i := range t.Mean {
		m, s := float64(t.Mean[i]), float64(t.Std[i])
		if math.IsNaN(m) || math.IsInf(m, 0) || !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("corrupt model file: channel %d normalised by mean %v and deviation %v", i, m, s)
		}
	}
	if err := t.Model.Validate(); err != nil {
		return fmt.Errorf("corrupt model file: %w", err)
	}
	if _, err := encoder.ParamCount(t.Model, t.Input, t.Head, t.NumClasses); err != nil {
		return fmt.Errorf("corrupt model file: %w", err)
	}
	return checkFinite(t.Weights)
}

// checkRun validates a model file against its run's configuration: the
// model and data set it was trained with.
func (t *Trained) checkRun(cfg Config) error {
	if t.Model != cfg.Model {
		return fmt.Errorf("the model file holds a %+v model, the run's %s says %+v", t.Model, ConfigFile, cfg.Model)
	}
	if t.Dataset != cfg.Data.Dataset {
		return fmt.Errorf("the model file was trained on %s, the run's %s says %s", t.Dataset, ConfigFile, cfg.Data.Dataset)
	}
	return nil
}

// Bounds of a model file's input channels and classes.
const (
	maxModelChannels = 64
	maxModelClasses  = 1 << 16
)
