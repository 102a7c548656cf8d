package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/regfile"
	"github.com/sincere-ml/sincere/internal/report"
)

// Files a comparison writes into OUT/<config name>.
const (
	CompareJSON     = "compare.json"
	CompareCSV      = "compare.csv"
	CompareMarkdown = "compare.md"
	LossFigure      = "loss.png"
)

// CompareOptions says where a comparison goes.
type CompareOptions struct {
	// Out is the folder holding OUT/<config name>.
	Out string
	// Sets override configuration keys for every run.
	Sets []string
	// Reporter, if not nil, is told about progress.
	Reporter Reporter
	// Fetch, if not nil, downloads data sets found nowhere.
	Fetch *dataset.Fetcher
	// WaitLock waits for other processes that hold a run directory's
	// lock, instead of failing at once naming them.
	WaitLock bool
}

// Comparison is what Compare produced.
type Comparison struct {
	Report    *report.Comparison
	Collapsed []report.Collapsed
	// Markdown is compare.md.
	Markdown string
	// Dir is OUT/<config name>.
	Dir string
}

// probed is one run with its probe.
type probed struct {
	run      report.Run
	probe    *ProbeReport
	outcomes []Outcomes
}

// Compare runs every method and seed of a configuration: it pretrains each
// run (reusing a finished one, resuming a partial one), probes it (reusing
// a probe of the same model), then writes compare.json, compare.csv,
// compare.md and the figures into OUT/<config name>. It is RunTask for
// every task of the plan, in order, then Aggregate.
func Compare(ctx context.Context, cfgPath string, opt CompareOptions) (*Comparison, error) {
	p, err := newPlan(cfgPath, opt)
	if err != nil {
		return nil, err
	}
	var runs []probed
	for i := range p.tasks {
		r, err := p.run(ctx, i)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return p.aggregate(runs)
}

// aggregate writes the comparison of the probed runs, one per task in the
// plan's order.
func (p *plan) aggregate(runs []probed) (*Comparison, error) {
	cfgPath, opt, base := p.cfgPath, p.opt, p.base
	c := &Comparison{Dir: filepath.Join(opt.Out, base.Name)}
	c.Report = &report.Comparison{Name: base.Name, Config: cfgPath}
	for _, r := range runs {
		c.Report.Runs = append(c.Report.Runs, r.run)
		for _, x := range r.probe.Results {
			c.Report.Results = append(c.Report.Results, report.Result{Method: r.run.Method, Seed: r.run.Seed,
				Dataset: x.Dataset, Metric: x.Metric, Value: x.Value, CILow: x.CILow, CIHigh: x.CIHigh})
		}
		if r.probe.Collapsed {
			i := slices.IndexFunc(r.probe.Results, func(x ProbeResult) bool { return x.Metric == MetricMargin })
			if i < 0 {
				return nil, fmt.Errorf("%s: %s has no margin", r.run.Dir, ProbeFile)
			}
			c.Collapsed = append(c.Collapsed, report.Collapsed{Method: r.run.Method, Seed: r.run.Seed, Margin: r.probe.Results[i].Value})
		}
	}
	// Every run must have been evaluated on the same test sets.
	datasets := datasetsOf(runs[0])
	for _, r := range runs {
		if !slices.Equal(datasetsOf(r), datasets) {
			return nil, fmt.Errorf("%s: probed on %v, %s on %v", r.run.Dir, datasetsOf(r), runs[0].run.Dir, datasets)
		}
	}
	summary, diffs, err := summarize(base, runs, datasets)
	if err != nil {
		return nil, err
	}
	c.Report.Summary, c.Report.Differences, c.Report.Resamples = summary, diffs, base.Probe.Bootstrap
	// Everything is read and checked before the first file is written.
	if err := checkComparison(c); err != nil {
		return nil, err
	}
	curves, err := lossCurves(runs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := atomicfile.Clean(c.Dir); err != nil {
		return nil, err
	}
	if err := report.WriteJSON(filepath.Join(c.Dir, CompareJSON), c.Report); err != nil {
		return nil, err
	}
	if err := report.WriteCSV(filepath.Join(c.Dir, CompareCSV), c.Report.Results); err != nil {
		return nil, err
	}
	c.Markdown = report.Markdown(c.Report, c.Collapsed)
	if err := writeFigures(c, base, runs, datasets[0], curves); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(c.Dir, CompareMarkdown), []byte(c.Markdown)); err != nil {
		return nil, err
	}
	return c, nil
}

// checkComparison refuses a table with a value that is not finite, before
// anything is written.
func checkComparison(c *Comparison) error {
	bad := func(vs ...float64) bool {
		for _, v := range vs {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return true
			}
		}
		return false
	}
	for _, r := range c.Report.Results {
		if bad(r.Value, r.CILow, r.CIHigh) {
			return fmt.Errorf("%s seed %d: %s %s is %v [%v, %v]", r.Method, r.Seed, r.Dataset, r.Metric, r.Value, r.CILow, r.CIHigh)
		}
	}
	for _, s := range c.Report.Summary {
		for _, v := range s.PerSeed {
			if bad(v.Value) {
				return fmt.Errorf("%s seed %d: %s %s is %v", s.Method, v.Seed, s.Dataset, s.Metric, v.Value)
			}
		}
		if bad(s.Mean, s.CILow, s.CIHigh) {
			return fmt.Errorf("%s: the mean %s %s over %d seed(s) is %v [%v, %v]", s.Method, s.Dataset, s.Metric, s.Seeds, s.Mean, s.CILow, s.CIHigh)
		}
	}
	for _, d := range c.Report.Differences {
		if bad(d.Value, d.Low, d.High) {
			return fmt.Errorf("%s - %s: %s %s is %v [%v, %v]", d.A, d.B, d.Dataset, d.Metric, d.Value, d.Low, d.High)
		}
	}
	return nil
}

// lossCurves reads every run's loss curve.
func lossCurves(runs []probed) ([]report.Curve, error) {
	var curves []report.Curve
	for _, r := range runs {
		cv, err := lossCurve(r.run.Dir)
		if err != nil {
			return nil, err
		}
		cv.Label = fmt.Sprintf("%s seed %d", r.run.Method, r.run.Seed)
		curves = append(curves, cv)
	}
	return curves, nil
}

// writeFigures draws each method's similarity histogram on the run's own
// test set (all seeds pooled) and every run's loss curve, and links them
// from the markdown.
func writeFigures(c *Comparison, base Config, runs []probed, own string, curves []report.Curve) error {
	c.Markdown += "\nFigures:"
	for _, method := range base.Methods {
		var target, noise []float32
		for _, r := range runs {
			if r.run.Method != method {
				continue
			}
			for _, o := range r.outcomes {
				if o.Dataset == own {
					target, noise = append(target, o.Target...), append(noise, o.Noise...)
				}
			}
		}
		name := "similarity-" + method + ".png"
		title := fmt.Sprintf("%s on %s: target and noise similarities (%d seed(s))", method, own, len(base.Seeds))
		if err := report.SimilarityHistogram(filepath.Join(c.Dir, name), title, target, noise); err != nil {
			return err
		}
		c.Markdown += fmt.Sprintf(" [%s](%s)", name, name)
	}
	if err := report.LossCurves(filepath.Join(c.Dir, LossFigure), base.Name+": training loss", curves); err != nil {
		return err
	}
	c.Markdown += fmt.Sprintf(" [%s](%s)\n", LossFigure, LossFigure)
	return nil
}

// lossCurve reads a run's step losses from metrics.jsonl.
func lossCurve(dir string) (report.Curve, error) {
	f, _, err := regfile.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		return report.Curve{}, err
	}
	defer f.Close()
	var c report.Curve
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m metric
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return c, fmt.Errorf("%s: %v", f.Name(), err)
		}
		if m.Event == "step" && (m.Step < 1 || math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0)) {
			return c, fmt.Errorf("%s: a step line with step %d and loss %v", f.Name(), m.Step, m.Loss)
		}
		if m.Event == "step" {
			c.Steps = append(c.Steps, float64(m.Step))
			c.Loss = append(c.Loss, m.Loss)
		}
	}
	return c, sc.Err()
}

// sameProbeSettings reports whether two probes measure the same way; the
// data sets they cover are checked separately.
func sameProbeSettings(a, b ProbeConfig) bool {
	a.Datasets, b.Datasets = nil, nil
	return reflect.DeepEqual(a, b)
}

// maxProbeBytes bounds a probe.json.
const maxProbeBytes = 1 << 24

// reuseProbe returns a run's earlier probe when it was made for the same
// model with the same probe settings and covers the configured data sets,
// checked in full (see checkProbe); an error means the probe is run again.
func reuseProbe(dir string, cfg Config, method string, seed uint64) (*ProbeReport, []Outcomes, error) {
	path := filepath.Join(dir, ProbeFile)
	b, err := regfile.ReadAll(path, ProbeFile, maxProbeBytes)
	if err != nil {
		return nil, nil, err
	}
	var p ProbeReport
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	if p.Method != method || p.Seed != seed {
		return nil, nil, fmt.Errorf("%s: a probe of %s seed %d", path, p.Method, p.Seed)
	}
	sum, err := fileSHA256(filepath.Join(dir, ModelFile))
	if err != nil || sum != p.ModelSHA256 || !sameProbeSettings(p.Probe, cfg.Probe) {
		return nil, nil, fmt.Errorf("%s: made for another model or other probe settings", path)
	}
	o, err := LoadOutcomes(dir)
	if err != nil {
		return nil, nil, err
	}
	// Keep the configured data sets only (a probe may have added others).
	want := probeNames(cfg, nil)
	var keep []Outcomes
	for _, ds := range want {
		i := slices.IndexFunc(o, func(x Outcomes) bool { return x.Dataset == ds })
		if i < 0 {
			return nil, nil, fmt.Errorf("probe lacks %s", ds)
		}
		keep = append(keep, o[i])
	}
	p.Results = slices.DeleteFunc(p.Results, func(r ProbeResult) bool { return !slices.Contains(want, r.Dataset) })
	if err := checkProbe(&p, keep); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, keep, nil
}

// checkProbe validates a probe read back against its outcomes: each data
// set has every metric once, with finite values inside [-2, 2] (the bound:
// at most log(n + 1)) and an ordered interval over as many test images as
// the outcomes hold, which are themselves consistent (one entry per image
// in every list, 0 or 1 for the accuracies, finite similarities). A probe
// made before a metric existed fails, so it is made again.
func checkProbe(p *ProbeReport, outcomes []Outcomes) error {
	if math.IsNaN(p.MeanCosine) || p.MeanCosine < -1.001 || p.MeanCosine > 1.001 {
		return fmt.Errorf("mean cosine %v", p.MeanCosine)
	}
	for _, o := range outcomes {
		n := len(o.Labels)
		if n == 0 || len(o.KNN1) != n || len(o.KNN5) != n || len(o.Linear) != n || len(o.Target) != n || len(o.Noise) != n || len(o.Bound) != n {
			return fmt.Errorf("%s: outcomes of %d, %d, %d, %d, %d, %d and %d images", o.Dataset, n, len(o.KNN1), len(o.KNN5), len(o.Linear), len(o.Target), len(o.Noise), len(o.Bound))
		}
		for _, list := range [][]float64{o.KNN1, o.KNN5, o.Linear} {
			if slices.ContainsFunc(list, func(v float64) bool { return v != 0 && v != 1 }) {
				return fmt.Errorf("%s: an outcome that is neither 0 nor 1", o.Dataset)
			}
		}
		if !allFinite(o.Target) || !allFinite(o.Noise) {
			return fmt.Errorf("%s: similarities that are not finite", o.Dataset)
		}
		for _, metric := range Metrics() {
			k := 0
			for _, r := range p.Results {
				if r.Dataset != o.Dataset || r.Metric != metric {
					continue
				}
				k++
				ok := r.N == n && r.CILow <= r.CIHigh
				lo, hi := -2.0, 2.0
				if metric == MetricBound {
					lo, hi = -math.MaxFloat64, math.Log(float64(n+1))
				}
				for _, v := range []float64{r.Value, r.CILow, r.CIHigh} {
					ok = ok && v >= lo && v <= hi // NaN fails too
				}
				if !ok {
					return fmt.Errorf("%s %s: %v [%v, %v] over %d images (the outcomes hold %d)", o.Dataset, metric, r.Value, r.CILow, r.CIHigh, r.N, n)
				}
			}
			if k != 1 {
				return fmt.Errorf("%s %s: %d results, want 1", o.Dataset, metric, k)
			}
		}
	}
	if len(p.Results) != len(outcomes)*len(Metrics()) {
		return fmt.Errorf("%d results for %d data sets", len(p.Results), len(outcomes))
	}
	return nil
}
