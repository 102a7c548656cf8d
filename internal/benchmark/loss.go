// Package benchmark measures sincere's engines: the speed and memory of the
// fused losses (RunLoss) on synthetic batches, reported as a table.
package benchmark

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// LossOptions configures RunLoss.
type LossOptions struct {
	// Sizes lists the batch sizes N to measure.
	Sizes []int
	// Dim is the embedding width D.
	Dim int
	// Losses lists the losses to measure.
	Losses []kernels.Loss
	// Runs is the number of timed runs per case (at least 5), after one
	// warm-up run.
	Runs int
	// Temperature, Epsilon: the loss parameters.
	Temperature, Epsilon float64
	// Classes is the number of classes the labels are drawn from, in equal
	// shares, as a class-balanced sampler gives them.
	Classes int
	// Seed fixes the synthetic embeddings and labels.
	Seed uint64
}

// MaxValues bounds N x D of a benchmarked batch (4 GiB of float32 for the
// embeddings, as much again for the gradient).
const MaxValues = 1 << 30

// MinRuns is the fewest timed runs a median is taken over.
const MinRuns = 5

// Validate reports the first bad option.
func (o LossOptions) Validate() error {
	if len(o.Sizes) == 0 || len(o.Losses) == 0 {
		return fmt.Errorf("need at least one size and one loss")
	}
	if o.Dim < 1 {
		return fmt.Errorf("dimension must be at least 1, got %d", o.Dim)
	}
	for _, n := range o.Sizes {
		if n < 2 {
			return fmt.Errorf("batch size must be at least 2, got %d", n)
		}
		if _, err := sizes.Check(fmt.Sprintf("--n %d with --d %d", n, o.Dim), "embedding values", MaxValues, n, o.Dim); err != nil {
			return err
		}
	}
	if o.Runs < MinRuns {
		return fmt.Errorf("runs must be at least %d for a median, got %d", MinRuns, o.Runs)
	}
	if o.Classes < 1 {
		return fmt.Errorf("classes must be at least 1, got %d", o.Classes)
	}
	return kernels.Params{Loss: o.Losses[0], Temperature: o.Temperature, Epsilon: o.Epsilon}.Validate()
}

// LossRow is one measured case.
type LossRow struct {
	N       int     `json:"n"`
	D       int     `json:"d"`
	Loss    string  `json:"loss"`
	Device  string  `json:"device"`
	Runs    int     `json:"runs"`
	Median  float64 `json:"median_ms"`
	Min     float64 `json:"min_ms"`
	Max     float64 `json:"max_ms"`
	GFLOPS  float64 `json:"gflops"`
	AllocMB float64 `json:"alloc_mib"`
	Value   float64 `json:"loss_value"`

	// GPU runs only (engines that are kernels.Profiler).
	GPU       string  `json:"gpu,omitempty"`
	Precision string  `json:"precision,omitempty"`
	KernelMS  float64 `json:"kernel_ms,omitempty"`          // median of the kernels' total time
	DeviceMB  float64 `json:"device_scratch_mib,omitempty"` // device memory beyond inputs and outputs
	FloorMS   float64 `json:"floor_ms,omitempty"`           // max(MatrixMS, SpecialMS)
	MatrixMS  float64 `json:"matrix_floor_ms,omitempty"`    // 6 N^2 D flops at the peak matrix rate
	SpecialMS float64 `json:"special_floor_ms,omitempty"`   // 2 N^2 exponentials at the peak special-function rate
	// Kernels is the median time of each kernel, by name.
	Kernels map[string]float64 `json:"kernels_ms,omitempty"`
}

// OfFloor is the achieved fraction of the floor: FloorMS / KernelMS.
func (r LossRow) OfFloor() float64 {
	if r.KernelMS <= 0 {
		return 0
	}
	return r.FloorMS / r.KernelMS
}

// Flops is the nominal work of one forward+backward pass: 6 N^2 D.
func Flops(n, d int) float64 { return 6 * float64(n) * float64(n) * float64(d) }

// RunLoss measures forward+backward of every loss at every size. open
// returns a fresh engine for each case, so that the first call's
// allocations (the engine's scratch) are counted; an engine that is an
// io.Closer is closed after its case. progress, if not nil, is told after
// every run. For a GPU engine (a kernels.Profiler) the rows also give the
// kernels' time, the device memory and the floor.
func RunLoss(o LossOptions, open func() (kernels.LossEngine, error), progress func(done, total int, what string)) ([]LossRow, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	total := len(o.Sizes) * len(o.Losses) * (o.Runs + 1)
	done := 0
	var rows []LossRow
	for _, n := range o.Sizes {
		z, labels := Batch(n, o.Dim, o.Classes, o.Seed)
		grad := make([]float32, n*o.Dim)
		for _, l := range o.Losses {
			e, err := open()
			if err != nil {
				return nil, err
			}
			row, err := measureLoss(o, e, kernels.Params{Loss: l, Temperature: o.Temperature, Epsilon: o.Epsilon}, z, n, labels, grad,
				func() {
					done++
					if progress != nil {
						progress(done, total, fmt.Sprintf("%s N=%d", l, n))
					}
				})
			if c, ok := e.(io.Closer); ok {
				if cerr := c.Close(); cerr != nil && err == nil {
					err = cerr
				}
			}
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// measureLoss times one case: a warm-up run counting allocations, then
// o.Runs timed runs; tick is called after each run.
func measureLoss(o LossOptions, e kernels.LossEngine, p kernels.Params, z []float32, n int, labels []int, grad []float32, tick func()) (LossRow, error) {
	what := fmt.Sprintf("%s N=%d", p.Loss, n)
	prof, _ := e.(kernels.Profiler)
	// Warm-up, counting what the engine allocates.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := e.Compute(p, z, n, o.Dim, labels, grad)
	runtime.ReadMemStats(&after)
	if err != nil {
		return LossRow{}, fmt.Errorf("%s: %w", what, err)
	}
	tick()
	var scratch int64
	if prof != nil {
		scratch = prof.Profile().ScratchBytes
	}
	times := make([]float64, o.Runs)
	kernelTimes := make([]float64, o.Runs)
	perKernel := map[string][]float64{}
	for i := range times {
		t0 := time.Now()
		if _, err := e.Compute(p, z, n, o.Dim, labels, grad); err != nil {
			return LossRow{}, fmt.Errorf("%s: %w", what, err)
		}
		times[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
		if prof != nil {
			kp := prof.Profile()
			kernelTimes[i] = kp.KernelMS()
			for _, k := range kp.Kernels {
				perKernel[k.Name] = append(perKernel[k.Name], k.MS)
			}
		}
		tick()
	}
	slices.Sort(times)
	med := median(times)
	row := LossRow{
		N: n, D: o.Dim, Loss: p.Loss.String(), Device: e.Device(), Runs: o.Runs,
		Median: med, Min: times[0], Max: times[len(times)-1],
		GFLOPS:  Flops(n, o.Dim) / (med / 1e3) / 1e9,
		AllocMB: float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20),
		Value:   res.Loss,
	}
	if prof != nil {
		slices.Sort(kernelTimes)
		info := prof.Info()
		row.GPU, row.Precision = info.Name, prof.Precision()
		row.KernelMS = median(kernelTimes)
		row.DeviceMB = float64(scratch) / (1 << 20)
		floor, matrix, special := info.LossFloor(row.Precision, n, o.Dim)
		row.FloorMS, row.MatrixMS, row.SpecialMS = floor*1e3, matrix*1e3, special*1e3
		row.Kernels = map[string]float64{}
		for name, ts := range perKernel {
			slices.Sort(ts)
			row.Kernels[name] = median(ts)
		}
	}
	return row, nil
}

// median of sorted values.
func median(sorted []float64) float64 {
	m := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[m]
	}
	return (sorted[m-1] + sorted[m]) / 2
}

// Batch returns n unit-norm embeddings of width d (seeded Gaussian
// directions) and labels with the classes in equal shares, shuffled.
func Batch(n, d, classes int, seed uint64) ([]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	z := make([]float32, n*d)
	for i := range n {
		row := z[i*d : (i+1)*d]
		var norm float64
		for k := range row {
			v := rng.NormFloat64()
			row[k] = float32(v)
			norm += v * v
		}
		inv := 1 / math.Sqrt(norm)
		for k := range row {
			row[k] = float32(float64(row[k]) * inv)
		}
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % classes
	}
	rng.Shuffle(n, func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	return z, labels
}

// WriteLossTable prints rows as an aligned table. GPU rows add the
// precision, the kernels' median time (ms: the whole call, transfers
// included), the device memory beyond inputs and outputs, the floor and the
// achieved fraction of it.
func WriteLossTable(w io.Writer, rows []LossRow) error {
	gpu := slices.ContainsFunc(rows, func(r LossRow) bool { return r.GPU != "" })
	if gpu {
		fmt.Fprintf(w, "GPU: %s\n", rows[slices.IndexFunc(rows, func(r LossRow) bool { return r.GPU != "" })].GPU)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "N\tD\tloss\tdevice\tms (median)\tmin-max ms\tGFLOP/s\talloc MiB\t"
	if gpu {
		head += "precision\tkernel ms\tdevice MiB\tfloor ms\tof floor\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.1f\t%.1f-%.1f\t%.1f\t%.1f\t",
			r.N, r.D, r.Loss, r.Device, r.Median, r.Min, r.Max, r.GFLOPS, r.AllocMB)
		if gpu {
			floor, of := "-", "-"
			if r.FloorMS > 0 {
				floor, of = fmt.Sprintf("%.3f", r.FloorMS), fmt.Sprintf("%.0f%%", 100*r.OfFloor())
			}
			fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%s\t%s\t", r.Precision, r.KernelMS, r.DeviceMB, floor, of)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// WriteLossJSON prints rows as one JSON object per line.
func WriteLossJSON(w io.Writer, rows []LossRow) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// ParseLosses maps names to losses; "all" means every loss.
func ParseLosses(names []string) ([]kernels.Loss, error) {
	var out []kernels.Loss
	for _, name := range names {
		if strings.EqualFold(name, "all") {
			for _, n := range kernels.LossNames() {
				l, _ := kernels.ParseLoss(n)
				out = append(out, l)
			}
			continue
		}
		l, err := kernels.ParseLoss(name)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}
