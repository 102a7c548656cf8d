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

// MinRuns is the fewest timed runs a median is taken over.
const MinRuns = 5

// Validate reports the first bad option.
func (o LossOptions) Validate() error {
	if len(o.Sizes) == 0 || len(o.Losses) == 0 {
		return fmt.Errorf("need at least one size and one loss")
	}
	for _, n := range o.Sizes {
		if n < 2 {
			return fmt.Errorf("batch size must be at least 2, got %d", n)
		}
	}
	if o.Dim < 1 {
		return fmt.Errorf("dimension must be at least 1, got %d", o.Dim)
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
}

// Flops is the nominal work of one forward+backward pass: 6 N^2 D.
func Flops(n, d int) float64 { return 6 * float64(n) * float64(n) * float64(d) }

// RunLoss measures forward+backward of every loss at every size. open
// returns a fresh engine for each case, so that the first call's
// allocations (the engine's scratch) are counted; progress, if not nil, is
// told after every run.
func RunLoss(o LossOptions, open func() (kernels.Engine, error), progress func(done, total int, what string)) ([]LossRow, error) {
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
			p := kernels.Params{Loss: l, Temperature: o.Temperature, Epsilon: o.Epsilon}
			what := fmt.Sprintf("%s N=%d", l, n)
			// Warm-up, counting what the engine allocates.
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res, err := e.Compute(p, z, n, o.Dim, labels, grad)
			runtime.ReadMemStats(&after)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			done++
			if progress != nil {
				progress(done, total, what)
			}
			times := make([]float64, o.Runs)
			for i := range times {
				t0 := time.Now()
				if _, err := e.Compute(p, z, n, o.Dim, labels, grad); err != nil {
					return nil, fmt.Errorf("%s: %w", what, err)
				}
				times[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
				done++
				if progress != nil {
					progress(done, total, what)
				}
			}
			slices.Sort(times)
			med := median(times)
			rows = append(rows, LossRow{
				N: n, D: o.Dim, Loss: l.String(), Device: e.Device(), Runs: o.Runs,
				Median: med, Min: times[0], Max: times[len(times)-1],
				GFLOPS:  Flops(n, o.Dim) / (med / 1e3) / 1e9,
				AllocMB: float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20),
				Value:   res.Loss,
			})
		}
	}
	return rows, nil
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

// WriteLossTable prints rows as an aligned table.
func WriteLossTable(w io.Writer, rows []LossRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tD\tloss\tdevice\tms (median)\tmin-max ms\tGFLOP/s\talloc MiB\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.1f\t%.1f-%.1f\t%.1f\t%.1f\t\n",
			r.N, r.D, r.Loss, r.Device, r.Median, r.Min, r.Max, r.GFLOPS, r.AllocMB)
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
