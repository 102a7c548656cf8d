package experiment

import (
	"fmt"
	"math"
	"slices"

	"github.com/sincere-ml/sincere/internal/evaluate"
	"github.com/sincere-ml/sincere/internal/report"
)

// twoLevelSeed fixes the resamples of the comparison's two-level bootstrap.
const twoLevelSeed = 20250309

// summarize computes, for every data set, method and metric, the mean over
// seeds with its two-level bootstrap interval (seeds resampled, then the
// test images within each resampled run) and the per-seed values, and the
// paired SINCERE - SupCon differences from the same resamples. runs are in
// method-major order, every method with the same seeds, and every run was
// probed on datasets, in that order (aggregate checks it).
func summarize(base Config, runs []probed, datasets []string) ([]report.Summary, []report.Difference, error) {
	byMethod := map[string][]probed{} // the runs of a method, in seed order
	for _, r := range runs {
		byMethod[r.run.Method] = append(byMethod[r.run.Method], r)
	}
	sizes := map[string]int{}
	for _, o := range runs[0].outcomes {
		sizes[o.Dataset] = len(o.Labels)
	}
	paired := slices.Contains(base.Methods, "sincere") && slices.Contains(base.Methods, "supcon")
	summary := map[string][]report.Summary{}
	var diffs []report.Difference
	for _, ds := range datasets {
		// One two-level bootstrap per data set: every method and metric sees
		// the same resamples, so differences of replicates are paired.
		var stats [][]evaluate.Statistic
		for _, method := range base.Methods {
			for _, metric := range Metrics() {
				var st []evaluate.Statistic
				for _, r := range byMethod[method] {
					o := r.outcomesOf(ds)
					if len(o.Labels) != sizes[ds] {
						return nil, nil, fmt.Errorf("%s: %d test images of %s, other runs have %d", r.run.Dir, len(o.Labels), ds, sizes[ds])
					}
					st = append(st, o.Statistic(metric))
				}
				stats = append(stats, st)
			}
		}
		reps, err := evaluate.TwoLevel(sizes[ds], base.Probe.Bootstrap, twoLevelSeed, stats)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ds, err)
		}
		at := func(method, metric string) evaluate.Replicates {
			return reps[slices.Index(base.Methods, method)*len(Metrics())+slices.Index(Metrics(), metric)]
		}
		for _, method := range base.Methods {
			for _, metric := range Metrics() {
				iv := at(method, metric).Interval()
				s := report.Summary{Method: method, Dataset: ds, Metric: metric,
					Mean: iv.Value, CILow: iv.Low, CIHigh: iv.High}
				for _, r := range byMethod[method] {
					v := r.probe.valueOf(ds, metric)
					s.PerSeed = append(s.PerSeed, report.SeedValue{Seed: r.run.Seed, Value: v})
				}
				s.Seeds = len(s.PerSeed)
				summary[method] = append(summary[method], s)
			}
		}
		if paired {
			for _, metric := range Metrics() {
				iv := at("sincere", metric).Minus(at("supcon", metric)).Interval()
				d := report.Difference{A: "sincere", B: "supcon", Dataset: ds, Metric: metric, Value: iv.Value, Low: iv.Low, High: iv.High}
				d.IsSignificant = d.Significant()
				diffs = append(diffs, d)
			}
		}
	}
	var out []report.Summary
	for _, method := range base.Methods { // rows by method, then data set and metric
		out = append(out, summary[method]...)
	}
	return out, diffs, nil
}

// datasetsOf lists the data sets a run was probed on.
func datasetsOf(r probed) []string {
	var out []string
	for _, o := range r.outcomes {
		out = append(out, o.Dataset)
	}
	return out
}

// outcomesOf returns the run's outcomes on a data set.
func (r probed) outcomesOf(ds string) *Outcomes {
	for i := range r.outcomes {
		if r.outcomes[i].Dataset == ds {
			return &r.outcomes[i]
		}
	}
	return nil
}

// valueOf returns a metric's value on a data set (NaN if absent).
func (p *ProbeReport) valueOf(ds, metric string) float64 {
	for _, x := range p.Results {
		if x.Dataset == ds && x.Metric == metric {
			return x.Value
		}
	}
	return math.NaN()
}
