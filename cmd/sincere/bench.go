package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/benchmark"
	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/experiment"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/backend"
	"github.com/sincere-ml/sincere/internal/sizes"
)

func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the speed and memory of sincere's engines on this machine",
		Long: `Measure sincere's engines on synthetic data. Speed is reported as the median
of several timed runs after a warm-up; this is the only place speed is
measured (tests never time anything).`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newBenchLossCmd(e), newBenchDataCmd(e), newBenchTrainCmd(e))
	return cmd
}

func newBenchLossCmd(e *env) *cobra.Command {
	var (
		o        benchmark.LossOptions
		losses   []string
		device   string
		workers  int
		portable bool
		asJSON   bool
		tile     int
		prec     string
	)
	cmd := &cobra.Command{
		Use:   "loss [--n N]... [--d D] [--loss L]...",
		Short: "Time the fused losses, forward and backward, on synthetic batches",
		Long: `Time forward+backward of the fused losses on N unit-norm random embeddings of
width D with labels from --classes classes in equal shares. For every N and
loss: one warm-up run, then --runs timed runs (at least 5); the table gives the
median, the range, GFLOP/s counted as 6 N^2 D per run, and the memory the loss
allocated beyond its inputs and outputs (its scratch, on the warm-up run).

On a GPU (--device cuda, with the GPU build from make cuda) each row also
gives the precision of the tile products (--precision), the median time of
the kernels alone (the "ms" column is the whole call, transfers included),
the device memory held beyond the inputs and outputs, and the floor: the
larger of 6 N^2 D flops at the GPU's peak matrix rate and 2 N^2
exponentials at its peak special-function rate, with the achieved fraction
of it.`,
		Example: `  sincere bench loss
  sincere bench loss --n 1024 --n 8192 --n 65536 --loss sincere
  sincere bench loss --n 8192 --loss all --runs 7 --json
  sincere-cuda bench loss --device cuda --n 32768 --n 262144 --loss sincere --precision tf32`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWorkers("--workers", workers); err != nil {
				return err
			}
			var err error
			if o.Losses, err = benchmark.ParseLosses(losses); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			opt := kernels.Options{CPU: kernels.CPUOptions{Workers: workers, Portable: portable, Tile: tile},
				CUDA: kernels.CUDAOptions{Precision: prec}}
			probe, err := backend.OpenLossEngine(device, opt)
			if err != nil {
				return err
			}
			if device == kernels.DeviceAuto && probe.Device() == kernels.DeviceCPU {
				e.logf("bench: computing on the CPU: %s", cpuReason())
			}
			e.logf("bench: %s", probe.Describe())
			closeEngine(probe)
			open := func() (kernels.LossEngine, error) { return backend.OpenLossEngine(device, opt) }
			rows, err := benchmark.RunLoss(o, open, e.benchProgress())
			if err != nil {
				return err
			}
			if asJSON {
				return benchmark.WriteLossJSON(e.stdout, rows)
			}
			return benchmark.WriteLossTable(e.stdout, rows)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.Sizes, "n", []int{1024, 8192}, "batch size N (repeat or comma-separate for several)")
	f.IntVar(&o.Dim, "d", 128, "embedding width D")
	f.StringSliceVar(&losses, "loss", []string{"all"}, "loss to time: supcon, sincere, eps-supinfonce or all (repeatable)")
	f.IntVar(&o.Runs, "runs", benchmark.MinRuns, "timed runs per case after the warm-up (at least 5)")
	f.Float64Var(&o.Temperature, "temperature", 0.1, "temperature tau")
	f.Float64Var(&o.Epsilon, "epsilon", 0.25, "margin of eps-supinfonce")
	f.IntVar(&o.Classes, "classes", 10, "number of classes in each batch, in equal shares")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the synthetic batch")
	f.StringVar(&device, "device", kernels.DeviceAuto, "cpu, cuda or auto")
	f.IntVar(&workers, "workers", 0, "CPU worker goroutines (0: one per core)")
	f.BoolVar(&portable, "portable", false, "use the pure-Go CPU kernels even where assembly ones exist")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per case instead of the table")
	f.StringVar(&prec, "precision", kernels.PrecisionAuto, "GPU tile products: auto (tf32x3 on tensor-core GPUs), tf32x3, tf32 or fp32")
	f.IntVar(&tile, "tile", 0, "CPU tile side, a multiple of 48 (0: chosen from N)")
	_ = f.MarkHidden("tile")
	return cmd
}

// benchProgress returns the progress callback for a benchmark: a bar on a
// terminal, a line per run that took a second or more otherwise, nothing
// with --quiet.
func (e *env) benchProgress() func(done, total int, what string) {
	if e.quiet {
		return nil
	}
	if e.interactive {
		var bar *progressbar.ProgressBar
		return func(done, total int, what string) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(e.stderr),
					progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(),
					progressbar.OptionSetWidth(30))
			}
			bar.Describe(what)
			_ = bar.Set(done)
		}
	}
	last := time.Now()
	return func(done, total int, what string) {
		now := time.Now()
		if took := now.Sub(last); took >= time.Second || done == total {
			e.logf("bench: %s, run %d of %d (%.1f s)", what, done, total, took.Seconds())
		}
		last = now
	}
}

func newBenchDataCmd(e *env) *cobra.Command {
	var (
		o    benchmark.DataOptions
		root string
	)
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Time the input pipeline: sampling, two augmented views, normalisation",
		Long: `Time the whole input pipeline as pretraining uses it: class-balanced batches,
--views augmented views of each image, normalisation, on background workers.
The digits preset runs on MNIST and the cifar preset on CIFAR-10 where they
are present, else on synthetic images of the same shape. Rates count source
images (images/s) and augmented views (views/s) per second.`,
		Example: "  sincere bench data\n  sincere bench data --batch 512 --workers 1 --workers 2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, w := range o.Workers {
				if err := checkWorkers("--workers", w); err != nil {
					return err
				}
			}
			if root == "" {
				root = dataset.DefaultRoot()
			}
			var cases []benchmark.DataCase
			for _, c := range []struct {
				name, augment string
				synth         dataset.SyntheticOptions
			}{
				{"mnist", dataset.AugmentDigits, dataset.SyntheticOptions{Classes: 10, Train: 20000, C: 1, H: 28, W: 28, Seed: 1}},
				{"cifar10", dataset.AugmentCIFAR, dataset.SyntheticOptions{Classes: 10, Train: 20000, C: 3, H: 32, W: 32, Seed: 1}},
			} {
				train, _, err := dataset.Open(cmd.Context(), dataset.Spec{Name: c.name, Root: root})
				name := c.name
				if err != nil {
					e.logf("bench: %v; using synthetic %dx%dx%d images instead", err, c.synth.C, c.synth.H, c.synth.W)
					if train, err = dataset.Synthetic(c.synth, true); err != nil {
						return err
					}
					name = "synthetic"
				}
				cases = append(cases, benchmark.DataCase{Name: name, Train: train, Augment: c.augment})
			}
			rows, err := benchmark.RunData(o, cases)
			if err != nil {
				return err
			}
			return benchmark.WriteDataTable(e.stdout, rows)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.BatchSize, "batch", 256, "images per batch, before views")
	f.IntVar(&o.Views, "views", 2, "augmented views per image")
	f.IntVar(&o.Batches, "batches", 40, "timed batches per case")
	f.IntVar(&o.Warmup, "warmup", 4, "untimed batches first")
	f.IntSliceVar(&o.Workers, "workers", []int{1, 0}, "worker goroutines to try (0: one per core; repeatable)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the sampling and augmentation")
	f.StringVar(&root, "root", "", "data root (default $SINCERE_DATA_ROOT or ~/.cache/sincere/data)")
	return cmd
}

func newBenchTrainCmd(e *env) *cobra.Command {
	var (
		cfgPaths []string
		method   string
		sets     []string
		device   string
		asJSON   bool
		o        benchmark.TrainOptions
	)
	cmd := &cobra.Command{
		Use:   "train --config C.yaml [--config D.yaml]... [--method M] [--set key=value]...",
		Short: "Time full pretraining steps: both views, forward, loss, backward, update",
		Long: `Time full pretraining steps of a configuration's model on its data (median of
--steps after --warmup): images/s (source images) and views/s, the GFLOP/s of
the step's matrix products (convolutions, linear layers and the fused loss,
counted analytically), that rate as a fraction of this CPU's SGEMM rate
measured in the same run (on a GPU also as a fraction of its TF32 or FP32
peak), the most device memory held, and where the time goes, by phase and by
layer (timed by the device: events on a GPU). Data a configuration names can
be replaced, e.g. by synthetic images of the same shape:
--set data.dataset=synthetic:3x32x32. --device chooses where the steps run
(the configuration's train.device is ignored: cpu unless --device says).`,
		Example: `  sincere bench train --config configs/quick.yaml --set train.batch_size=256
  sincere bench train --config configs/cifar10-resnet18.yaml --set data.dataset=synthetic:3x32x32 --set train.batch_size=64
  sincere-cuda bench train --device cuda --config configs/cifar10-resnet50.yaml --set data.dataset=synthetic:3x32x32 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []*benchmark.TrainResult
			for _, p := range cfgPaths {
				cfg, m, err := experiment.LoadMethod(p, method, append([]string{"train.device=" + device}, sets...))
				if err != nil {
					return err
				}
				o.Method = m
				e.logf("bench: %s, %s on %s, batch %d x %d views, device %s", p, cfg.Model.Arch, cfg.Data.Dataset, cfg.Train.BatchSize, cfg.Data.Views, device)
				r, err := benchmark.RunTrain(cmd.Context(), cfg, o)
				if err != nil {
					return err
				}
				r.Config = p
				rs = append(rs, r)
			}
			if asJSON {
				return benchmark.WriteTrainJSON(e.stdout, rs)
			}
			return benchmark.WriteTrain(e.stdout, rs)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&cfgPaths, "config", nil, "experiment configuration (repeatable)")
	f.StringVar(&method, "method", "", "method whose step is timed (default: the config's first)")
	f.StringArrayVar(&sets, "set", nil, "override a key, e.g. --set train.batch_size=256 (repeatable)")
	f.IntVar(&o.Steps, "steps", 7, "timed steps")
	f.IntVar(&o.Warmup, "warmup", 2, "untimed steps first")
	f.StringVar(&device, "device", kernels.DeviceCPU, "cpu, cuda or auto")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per configuration instead of the table")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// checkWorkers bounds a worker-count flag.
func checkWorkers(flag string, w int) error {
	if w < 0 || w > sizes.MaxWorkers {
		return fmt.Errorf("%s: must be 0 (one per core) to %d, got %d", flag, sizes.MaxWorkers, w)
	}
	return nil
}
