package benchmark

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

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
	// Config is the configuration file (set by the caller).
	Config string `json:"config,omitempty"`
	// Device describes where the steps ran.
	Device       string  `json:"device"`
	Arch         string  `json:"arch"`
	Input        [3]int  `json:"input"`
	Batch        int     `json:"batch"`
	Views        int     `json:"views"`
	Params       int     `json:"params"`
	StepMS       float64 `json:"step_ms"`
	MinMS        float64 `json:"min_ms"`
	MaxMS        float64 `json:"max_ms"`
	ImagesPerSec float64 `json:"images_per_sec"`
	ViewsPerSec  float64 `json:"views_per_sec"`
	GFLOPPerStep float64 `json:"gflop_per_step"`
	GFLOPS       float64 `json:"gflops"`
	// GemmGFLOPS is the device's SGEMM rate measured in the same run, on
	// 1024 x 1024 x 256 products, for the fraction.
	GemmGFLOPS float64 `json:"gemm_gflops"`
	// PeakGFLOPS is a GPU's datasheet peak for its matrix products (TF32
	// tensor cores, or FP32), at its clock; 0 on the CPU.
	PeakGFLOPS float64 `json:"peak_gflops,omitempty"`
	// DeviceMiB is the most device memory the run held.
	DeviceMiB float64 `json:"device_mib"`
	// Phases and Layers say where the time of the timed steps went.
	Phases []Share `json:"phases"`
	Layers []Share `json:"layers"`
}

// Share is a part of the step time.
type Share struct {
	Name string  `json:"name"`
	MS   float64 `json:"ms"`
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
	defer t.Close()
	b := loader.NewBatch()
	timer := t.Device().Timer()
	times := make([]float64, 0, o.Steps)
	for i := range o.Warmup + o.Steps {
		loader.Fill(0, i%loader.BatchesPerEpoch(), b)
		if i == o.Warmup {
			if _, err := timer.Read(); err != nil { // drop the warm-up's marks
				return nil, err
			}
			t.SetProfile(true)
		}
		t0 := time.Now()
		timer.Start()
		if _, err := t.Step(b, 1e-4); err != nil {
			return nil, err
		}
		if i >= o.Warmup {
			times = append(times, float64(time.Since(t0).Microseconds())/1e3)
		}
	}
	t.SetProfile(false)
	spans, err := timer.Read()
	if err != nil {
		return nil, err
	}
	slices.Sort(times)
	med := median(times)
	rows := b.Size * b.Views
	flops := m.Flops(rows)
	if cfg.Data.Views > 0 && o.Method != experiment.MethodCE {
		flops += Flops(rows, m.OutDim()) // the fused loss
	}
	rate, err := gemmRate(t.Device())
	if err != nil {
		return nil, err
	}
	dev := t.Device()
	r := &TrainResult{Device: dev.Describe(), Arch: cfg.Model.Arch, Input: m.Input, Batch: b.Size, Views: b.Views, Params: m.ParamCount(),
		StepMS: med, MinMS: times[0], MaxMS: times[len(times)-1],
		ImagesPerSec: float64(b.Size) / (med / 1e3), ViewsPerSec: float64(rows) / (med / 1e3),
		GFLOPPerStep: flops / 1e9, GFLOPS: flops / (med / 1e3) / 1e9, GemmGFLOPS: rate,
		DeviceMiB: float64(dev.MemStats().Peak) / (1 << 20)}
	if g, ok := dev.(gpu); ok {
		flops, _ := g.Info().PeakRates(g.Precision())
		r.PeakGFLOPS = flops / 1e9
	}
	r.Phases, r.Layers = phases(spans, float64(o.Steps))
	return r, nil
}

// gpu is a device that describes a GPU: the CUDA device.
type gpu interface {
	Info() kernels.GPUInfo
	Precision() string
}

// phases splits the timer's spans of the timed steps into the step's
// phases (the layers' forward and backward marks summed) and the layers,
// largest first, each per step.
func phases(spans []kernels.Span, steps float64) (phase, layers []Share) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / steps }
	var fwd, bwd time.Duration
	for _, s := range spans {
		switch {
		case strings.HasSuffix(s.Name, " forward"):
			fwd += s.Time
			layers = append(layers, Share{s.Name, ms(s.Time)})
		case strings.HasSuffix(s.Name, " backward"):
			bwd += s.Time
			layers = append(layers, Share{s.Name, ms(s.Time)})
		}
	}
	slices.SortStableFunc(layers, func(a, b Share) int { return cmp.Compare(b.MS, a.MS) })
	byName := func(name string) time.Duration {
		for _, s := range spans {
			if s.Name == name {
				return s.Time
			}
		}
		return 0
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"forward", fwd}, {"loss", byName("loss")}, {"backward", bwd}, {"update", byName("update")}, {"upload", byName("upload")}} {
		phase = append(phase, Share{p.name, ms(p.d)})
	}
	return phase, layers
}

// gemmRate measures the device's SGEMM rate on 1024 x 1024 x 256 products
// (best of 5, timed by the device's timer), the ceiling the step's
// products are compared with.
func gemmRate(dev kernels.Device) (float64, error) {
	const m, n, k = 1024, 1024, 256
	arena, err := kernels.NewArena(dev, "gemm benchmark", kernels.ArenaBytes(4*m*k, 4*k*n, 4*m*n))
	if err != nil {
		return 0, err
	}
	defer arena.Free()
	rng := rand.New(rand.NewPCG(1, 2))
	host := func(size int) kernels.Buffer {
		v := make([]float32, size)
		for i := range v {
			v[i] = rng.Float32()
		}
		b, _ := arena.Take(size)
		dev.Upload(b, v)
		return b
	}
	a, bb := host(m*k), host(k*n)
	c, _ := arena.Take(m * n)
	timer := dev.Timer()
	best := time.Hour
	for range 6 {
		timer.Start()
		dev.Gemm(false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
		timer.Mark("gemm")
		spans, err := timer.Read()
		if err != nil {
			return 0, err
		}
		best = min(best, spans[0].Time)
	}
	return 2 * m * n * k / best.Seconds() / 1e9, nil
}

// WriteTrain prints the results: a table line each, then where the time
// goes.
func WriteTrain(w io.Writer, rs []*TrainResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "arch\tinput\tbatch\tparams\tms/step\timages/s\tviews/s\tGFLOP/step\tGFLOP/s\tSGEMM GFLOP/s\tof SGEMM\tof peak\tdevice MiB\t")
	for _, r := range rs {
		peak := "-"
		if r.PeakGFLOPS > 0 {
			peak = fmt.Sprintf("%.1f%%", 100*r.GFLOPS/r.PeakGFLOPS)
		}
		fmt.Fprintf(tw, "%s\t%dx%dx%d\t%dx%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.0f%%\t%s\t%.0f\t\n", r.Arch, r.Input[0], r.Input[1], r.Input[2],
			r.Batch, r.Views, r.Params, r.StepMS, r.ImagesPerSec, r.ViewsPerSec, r.GFLOPPerStep, r.GFLOPS, r.GemmGFLOPS, 100*r.GFLOPS/r.GemmGFLOPS, peak, r.DeviceMiB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rs {
		fmt.Fprintf(w, "\n%s on %s: step %.1f ms (median; range %.1f-%.1f):\n  phases: %s\n  layers: %s\n", r.Arch, r.Device, r.StepMS, r.MinMS, r.MaxMS,
			shares(r.Phases, r.StepMS), shares(r.Layers, r.StepMS))
	}
	return nil
}

// WriteTrainJSON prints one JSON object per result.
func WriteTrainJSON(w io.Writer, rs []*TrainResult) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

func shares(s []Share, total float64) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprintf("%s %.1f ms (%.0f%%)", x.Name, x.MS, 100*x.MS/total)
	}
	return strings.Join(parts, ", ")
}
