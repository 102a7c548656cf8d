//go:build gpu || gpuemu

package experiment

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"
)

// These tests train on the CUDA device: on the CPU emulator of its kernels
// in a gpuemu build (make test runs them), on a GPU in a gpu build.

// gpuConfig is a run small enough for the emulator, on train.device.
func gpuConfig(t *testing.T, device string, extra ...string) Config {
	t.Helper()
	return tinyConfig(t, append([]string{"data.dataset=synthetic:1x8x8", "data.subset=160", "train.batch_size=16", "model.width=0.125", "train.epochs=1",
		"train.checkpoint_every=3", "train.log_every=2", "train.device=" + device}, extra...)...)
}

// TestPretrainAndProbeOnTheGPU trains and probes a run on the CUDA device
// and checks that device memory stays flat after the first step.
func TestPretrainAndProbeOnTheGPU(t *testing.T) {
	c := gpuConfig(t, "cuda", "probe.train_subset=100", "probe.linear_epochs=1", "probe.bootstrap=10")
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ms := readMetrics(t, dir)
	var first float64
	for _, m := range ms {
		if m.Event != "step" {
			continue
		}
		if math.IsNaN(m.Loss) || m.DeviceMiB <= 0 || m.GradNorm <= 0 {
			t.Errorf("step metric %+v", m)
		}
		if first == 0 {
			first = m.DeviceMiB
		} else if m.DeviceMiB != first {
			t.Errorf("device memory moved from %.3f to %.3f MiB at step %d", first, m.DeviceMiB, m.Step)
		}
	}
	r, _, err := Probe(context.Background(), dir, ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Results) == 0 {
		t.Fatalf("probe report %+v", r)
	}
}

// TestResumeAcrossDevices interrupts a run on one device and finishes it
// on the other: a checkpoint written on the GPU resumes on the CPU and the
// other way round (the device is not part of what a run trains).
func TestResumeAcrossDevices(t *testing.T) {
	for _, devs := range [][2]string{{"cuda", "cpu"}, {"cpu", "cuda"}} {
		out := t.TempDir()
		first, second := gpuConfig(t, devs[0]), gpuConfig(t, devs[1])
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Pretrain(ctx, first, PretrainOptions{Method: "supcon", Seed: 2, Out: out, Reporter: &cancelAfter{n: 4, cancel: cancel}})
		cancel()
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("%s: %v", devs[0], err)
		}
		dir, err := Pretrain(context.Background(), second, PretrainOptions{Method: "supcon", Seed: 2, Out: out, Resume: true})
		if err != nil {
			t.Fatalf("%s, resumed on %s: %v", devs[0], devs[1], err)
		}
		if !Finished(dir) {
			t.Fatalf("%s, resumed on %s: no model", devs[0], devs[1])
		}
		if _, err := LoadTrained(filepath.Join(dir, ModelFile)); err != nil {
			t.Fatal(err)
		}
	}
}
