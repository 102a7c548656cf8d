package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/sincere-ml/sincere/internal/dataset"
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
	Diffs     []report.Difference
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
			margin := r.probe.Results[slices.IndexFunc(r.probe.Results, func(x ProbeResult) bool { return x.Metric == MetricMargin })].Value
			c.Collapsed = append(c.Collapsed, report.Collapsed{Method: r.run.Method, Seed: r.run.Seed, Margin: margin})
		}
	}
	summary, diffs, err := summarize(base, runs)
	if err != nil {
		return nil, err
	}
	c.Report.Summary, c.Diffs, c.Report.Differences, c.Report.Resamples = summary, diffs, diffs, base.Probe.Bootstrap
	datasets := datasetsOf(runs[0])
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := report.WriteJSON(filepath.Join(c.Dir, CompareJSON), c.Report); err != nil {
		return nil, err
	}
	if err := report.WriteCSV(filepath.Join(c.Dir, CompareCSV), c.Report.Results); err != nil {
		return nil, err
	}
	c.Markdown = report.Markdown(c.Report, c.Diffs, c.Collapsed)
	if err := writeFigures(c, base, runs, datasets[0]); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, CompareMarkdown), []byte(c.Markdown), 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

// writeFigures draws each method's similarity histogram on the run's own
// test set (all seeds pooled) and every run's loss curve, and links them
// from the markdown.
func writeFigures(c *Comparison, base Config, runs []probed, own string) error {
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
	var curves []report.Curve
	for _, r := range runs {
		cv, err := lossCurve(r.run.Dir)
		if err != nil {
			return err
		}
		cv.Label = fmt.Sprintf("%s seed %d", r.run.Method, r.run.Seed)
		curves = append(curves, cv)
	}
	if err := report.LossCurves(filepath.Join(c.Dir, LossFigure), base.Name+": training loss", curves); err != nil {
		return err
	}
	c.Markdown += fmt.Sprintf(" [%s](%s)\n", LossFigure, LossFigure)
	return nil
}

// lossCurve reads a run's step losses from metrics.jsonl.
func lossCurve(dir string) (report.Curve, error) {
	f, err := os.Open(filepath.Join(dir, MetricsFile))
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

// reuseProbe returns a run's earlier probe when it was made for the same
// model with the same probe settings and covers the configured data sets.
func reuseProbe(dir string, cfg Config) (*ProbeReport, []Outcomes, error) {
	b, err := os.ReadFile(filepath.Join(dir, ProbeFile))
	if err != nil {
		return nil, nil, err
	}
	var p ProbeReport
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, nil, err
	}
	sum, err := fileSHA256(filepath.Join(dir, ModelFile))
	if err != nil || sum != p.ModelSHA256 || !sameProbeSettings(p.Probe, cfg.Probe) {
		return nil, nil, fmt.Errorf("stale probe")
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
	return &p, keep, nil
}
