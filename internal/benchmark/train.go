package benchmark

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/experiment"
	"github.com/sincere-ml/sincere/internal/kernels"
)

// TrainOptions configures RunTrain.
type TrainOptions struct {
	// Method is the pretraining method whose step is timed.
	Method string
	// Steps are timed after Warmup untimed ones; the median is reported.
	Steps, Warmup int
}

// TrainResult is what one pretraining step costs.
type TrainResult struct {
	Arch                      string
	Input                     [3]int
	Batch, Views              int
	Params                    int
	StepMS, MinMS, MaxMS      float64
	ImagesPerSec, ViewsPerSec float64
	GFLOPPerStep, GFLOPS      float64
	// GemmGFLOPS is the CPU's SGEMM rate measured in the same run, on
	// 1024 x 1024 x 256 products, for the fraction.
	GemmGFLOPS float64
	// Phases and Layers say where the time of the timed steps went.
	Phases []Share
	Layers []Share
}

// Share is a part of the step time.
type Share struct {
	Name string
	MS   float64
}

// RunTrain times full pretraining steps (both views, forward, loss,
// backward, update) of the configured model on the configured data.
func RunTrain(ctx context.Context, cfg experiment.Config, o TrainOptions) (*TrainResult, error) {
	if o.Steps < 1 || o.Warmup < 0 {
		return nil, fmt.Errorf("bench train: need at least one timed step")
	}
	t, err := experiment.NewTrainer(ctx, cfg, o.Method, 1, nil)
	if err != nil {
		return nil, err
	}
	loader, m := t.Loader(), t.Model()
	if loader.BatchesPerEpoch() < 1 {
		return nil, fmt.Errorf("bench train: the data set holds less than one batch")
	}
	b := loader.NewBatch()
	var prof encoder.Profile
	times := make([]float64, 0, o.Steps)
	var phases experiment.Phases
	for i := range o.Warmup + o.Steps {
		loader.Fill(0, i%loader.BatchesPerEpoch(), b)
		if i == o.Warmup {
			m.SetProfile(&prof)
		}
		t0 := time.Now()
		if _, err := t.Step(b, 1e-4); err != nil {
			return nil, err
		}
		if i >= o.Warmup {
			times = append(times, float64(time.Since(t0).Microseconds())/1e3)
			p := t.LastPhases
			phases.Forward += p.Forward
			phases.Loss += p.Loss
			phases.Backward += p.Backward
			phases.Update += p.Update
			phases.Data += p.Data
		}
	}
	m.SetProfile(nil)
	slices.Sort(times)
	med := median(times)
	rows := b.Size * b.Views
	flops := m.Flops(rows)
	if cfg.Data.Views > 0 && o.Method != experiment.MethodCE {
		flops += Flops(rows, m.OutDim()) // the fused loss
	}
	r := &TrainResult{Arch: cfg.Model.Arch, Input: m.Input, Batch: b.Size, Views: b.Views, Params: m.ParamCount(),
		StepMS: med, MinMS: times[0], MaxMS: times[len(times)-1],
		ImagesPerSec: float64(b.Size) / (med / 1e3), ViewsPerSec: float64(rows) / (med / 1e3),
		GFLOPPerStep: flops / 1e9, GFLOPS: flops / (med / 1e3) / 1e9, GemmGFLOPS: gemmRate(t.Device())}
	steps := float64(o.Steps)
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"forward", phases.Forward}, {"loss", phases.Loss}, {"backward", phases.Backward}, {"update", phases.Update}, {"upload", phases.Data}} {
		r.Phases = append(r.Phases, Share{p.name, float64(p.d.Microseconds()) / 1e3 / steps})
	}
	names, ts := prof.Times()
	for _, n := range names {
		r.Layers = append(r.Layers, Share{n, float64(ts[n].Microseconds()) / 1e3 / steps})
	}
	return r, nil
}

// gemmRate measures the device's SGEMM rate on 1024 x 1024 x 256 products
// (best of 5), the ceiling the step's products are compared with.
func gemmRate(dev kernels.Device) float64 {
	const m, n, k = 1024, 1024, 256
	rng := rand.New(rand.NewPCG(1, 2))
	host := func(size int) kernels.Buffer {
		v := make([]float32, size)
		for i := range v {
			v[i] = rng.Float32()
		}
		b := dev.Alloc(size)
		dev.Upload(b, v)
		return b
	}
	a, bb, c := host(m*k), host(k*n), dev.Alloc(m*n)
	best := time.Hour
	for range 6 {
		t0 := time.Now()
		dev.Gemm(false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
		best = min(best, time.Since(t0))
	}
	return 2 * m * n * k / best.Seconds() / 1e9
}

// WriteTrain prints a result: the table line, then where the time goes.
func WriteTrain(w io.Writer, rs []*TrainResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "arch\tinput\tbatch\tparams\tms/step\timages/s\tviews/s\tGFLOP/step\tGFLOP/s\tSGEMM GFLOP/s\tof SGEMM\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%dx%dx%d\t%dx%d\t%d\t%.0f\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.0f%%\t\n", r.Arch, r.Input[0], r.Input[1], r.Input[2],
			r.Batch, r.Views, r.Params, r.StepMS, r.ImagesPerSec, r.ViewsPerSec, r.GFLOPPerStep, r.GFLOPS, r.GemmGFLOPS, 100*r.GFLOPS/r.GemmGFLOPS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rs {
		fmt.Fprintf(w, "\n%s step %.0f ms (median; range %.0f-%.0f):\n  phases: %s\n  layers: %s\n", r.Arch, r.StepMS, r.MinMS, r.MaxMS,
			shares(r.Phases, r.StepMS), shares(r.Layers, r.StepMS))
	}
	return nil
}

func shares(s []Share, total float64) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprintf("%s %.0f ms (%.0f%%)", x.Name, x.MS, 100*x.MS/total)
	}
	return strings.Join(parts, ", ")
}
