package experiment

import (
	"context"
	"encoding/json"
	"image"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/report"
)

// tinyCompare writes a config for a fast comparison on synthetic images.
func tinyCompare(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.yaml")
	body := `name: tiny
methods: [supcon, sincere]
seeds: [1, 2]
data: {dataset: synthetic, subset: 400, workers: 2}
model: {arch: cnn, width: 0.25, embedding: 16}
train: {epochs: 1, batch_size: 40, lr: 0.05, warmup_steps: 3, checkpoint_every: 5, device: cpu}
probe: {datasets: ["synthetic:1x28x28"], train_subset: 500, linear_epochs: 3, bootstrap: 100}
`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompareWritesEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	cfg := tinyCompare(t)
	out := t.TempDir()
	c, err := Compare(context.Background(), cfg, CompareOptions{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, "tiny")
	// compare.json has exactly the keys of the contract.
	raw, err := os.ReadFile(filepath.Join(dir, CompareJSON))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	wantKeys := map[string][]string{
		"":            {"config", "differences", "name", "resamples", "results", "runs", "summary"},
		"runs":        {"dir", "method", "seed"},
		"results":     {"ci_high", "ci_low", "dataset", "method", "metric", "seed", "value"},
		"summary":     {"ci_high", "ci_low", "dataset", "mean", "method", "metric", "per_seed", "seeds"},
		"differences": {"a", "b", "ci_high", "ci_low", "dataset", "metric", "significant", "value"},
	}
	checkKeys := func(where string, m map[string]json.RawMessage) {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, wantKeys[where]) {
			t.Errorf("compare.json %q keys %v, want %v", where, keys, wantKeys[where])
		}
	}
	checkKeys("", doc)
	for _, part := range []string{"runs", "results", "summary", "differences"} {
		var rows []map[string]json.RawMessage
		if err := json.Unmarshal(doc[part], &rows); err != nil || len(rows) == 0 {
			t.Fatalf("%s: %v (%d rows)", part, err, len(rows))
		}
		checkKeys(part, rows[0])
	}
	if len(c.Report.Runs) != 4 || len(c.Report.Results) != 4*2*5 || len(c.Report.Summary) != 2*2*5 {
		t.Errorf("%d runs, %d results, %d summary rows", len(c.Report.Runs), len(c.Report.Results), len(c.Report.Summary))
	}
	for _, s := range c.Report.Summary {
		if s.Seeds != 2 || !(s.CILow <= s.Mean && s.Mean <= s.CIHigh) {
			t.Errorf("summary row %+v", s)
		}
		if s.Metric != MetricMargin && s.Metric != MetricBound && (s.Mean < 0 || s.Mean > 1) {
			t.Errorf("accuracy %+v out of [0, 1]", s)
		}
		// The mean is over the seeds' own values, which are the runs' results.
		var sum float64
		for _, v := range s.PerSeed {
			sum += v.Value
			i := slices.IndexFunc(c.Report.Results, func(r report.Result) bool {
				return r.Method == s.Method && r.Seed == v.Seed && r.Dataset == s.Dataset && r.Metric == s.Metric
			})
			if i < 0 || c.Report.Results[i].Value != v.Value {
				t.Errorf("summary %s %s %s: seed %d value %v is not the run's result", s.Method, s.Dataset, s.Metric, v.Seed, v.Value)
			}
		}
		if len(s.PerSeed) != 2 || math.Abs(sum/2-s.Mean) > 1e-12 {
			t.Errorf("summary %+v: mean is not the mean of the per-seed values", s)
		}
	}
	if len(c.Report.Differences) != 2*5 {
		t.Errorf("%d SINCERE-SupCon differences, want 10", len(c.Report.Differences))
	}
	md, _ := os.ReadFile(filepath.Join(dir, CompareMarkdown))
	for _, want := range []string{"| method |", "| supcon", "| sincere", "synthetic knn1", "sincere - supcon, paired", "| supcon, 2 |", "two-level bootstrap", "loss.png"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("compare.md lacks %q:\n%s", want, md)
		}
	}
	csv, _ := os.ReadFile(filepath.Join(dir, CompareCSV))
	if lines := strings.Count(string(csv), "\n"); lines != 1+len(c.Report.Results) {
		t.Errorf("compare.csv has %d lines", lines)
	}
	for _, png := range []string{"similarity-supcon.png", "similarity-sincere.png", LossFigure} {
		f, err := os.Open(filepath.Join(dir, png))
		if err != nil {
			t.Fatal(err)
		}
		img, format, err := image.Decode(f)
		f.Close()
		if err != nil || format != "png" || img.Bounds().Dx() < 300 {
			t.Errorf("%s: %v %s", png, err, format)
		}
	}
	// A second comparison reuses the finished runs and probes.
	before, _ := os.Stat(filepath.Join(dir, "sincere-seed1", ProbeFile))
	c2, err := Compare(context.Background(), cfg, CompareOptions{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(dir, "sincere-seed1", ProbeFile))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("the second comparison probed a finished run again")
	}
	if c2.Markdown != c.Markdown {
		t.Error("the second comparison gave another table")
	}
}

func TestProbeErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	if _, _, err := Probe(context.Background(), t.TempDir(), ProbeOptions{}); err == nil || !strings.Contains(err.Error(), "no finished run") {
		t.Errorf("probe of an empty directory: %v", err)
	}
	c := tinyConfig(t, "train.epochs=1")
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Probe(context.Background(), dir, ProbeOptions{Extra: []string{"synthetic:3x32x32"}}); err == nil || !strings.Contains(err.Error(), "the encoder takes 1x28x28") {
		t.Errorf("probe with a transfer set of another shape: %v", err)
	}
	if _, _, err := Probe(context.Background(), dir, ProbeOptions{Extra: []string{"imagenet"}}); err == nil {
		t.Error("probe with an unknown data set succeeded")
	}
	r, o, err := Probe(context.Background(), dir, ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Results) != 5 || len(o) != 1 || len(o[0].KNN1) != o[0].Labels[0]*0+len(o[0].Labels) || r.MeanCosine >= 1 {
		t.Errorf("probe report %+v", r)
	}
	// probe.json's margin is median(target) - median(noise) of the outcomes.
	med := func(v []float32) float64 {
		s := make([]float64, len(v))
		for i, x := range v {
			s[i] = float64(x)
		}
		slices.Sort(s)
		if n := len(s); n%2 == 0 {
			return (s[n/2-1] + s[n/2]) / 2
		}
		return s[len(s)/2]
	}
	if got, want := r.valueOf(o[0].Dataset, MetricMargin), med(o[0].Target)-med(o[0].Noise); math.Abs(got-want) > 1e-7 {
		t.Errorf("probe margin %v, median(target) - median(noise) = %v", got, want)
	}
}
