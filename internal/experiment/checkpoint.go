package experiment

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"io"
	"os"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/encoder"
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

// readGob decodes the gob file path into v; what names the kind of file in
// the error for a corrupt one.
func readGob(path, what string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(v); err != nil {
		return fmt.Errorf("%s: corrupt %s: %v", path, what, err)
	}
	return nil
}

// save writes the checkpoint atomically.
func (c *Checkpoint) save(path string) error { return writeGob(path, c) }

// loadCheckpoint reads a checkpoint file.
func loadCheckpoint(path string) (*Checkpoint, error) {
	var c Checkpoint
	if err := readGob(path, "checkpoint", &c); err != nil {
		return nil, err
	}
	if c.Format != checkpointFormat {
		return nil, fmt.Errorf("%s: checkpoint format %d, this sincere reads %d", path, c.Format, checkpointFormat)
	}
	return &c, nil
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

// LoadTrained reads a run's model file.
func LoadTrained(path string) (*Trained, error) {
	var t Trained
	if err := readGob(path, "model file", &t); err != nil {
		return nil, err
	}
	if t.Format != checkpointFormat {
		return nil, fmt.Errorf("%s: model format %d, this sincere reads %d", path, t.Format, checkpointFormat)
	}
	return &t, nil
}
