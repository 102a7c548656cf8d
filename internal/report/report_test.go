package report

import (
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() *Comparison {
	one := func(v float64) []SeedValue { return []SeedValue{{1, v}, {2, v + 0.01}} }
	return &Comparison{Name: "demo", Config: "demo.yaml", Resamples: 1000,
		Runs:    []Run{{"supcon", 1, "a"}, {"sincere", 1, "b"}},
		Results: []Result{{"supcon", 1, "mnist", "knn1", 0.95, 0.94, 0.96}, {"sincere", 1, "mnist", "knn1", 0.97, 0.96, 0.98}},
		Summary: []Summary{
			{"supcon", "mnist", "knn1", 0.95, 0.94, 0.96, 2, one(0.945)}, {"supcon", "mnist", "margin", 0.03, 0.029, 0.031, 2, one(0.025)},
			{"sincere", "mnist", "knn1", 0.97, 0.96, 0.98, 2, one(0.965)}, {"sincere", "mnist", "margin", 0.06, 0.059, 0.061, 2, one(0.055)},
		}}
}

func TestMarkdown(t *testing.T) {
	diffs := []Difference{
		{"sincere", "supcon", "mnist", "knn1", 0.02, 0.01, 0.03, true},
		{"sincere", "supcon", "mnist", "margin", 0.001, -0.002, 0.004, false},
	}
	c := sample()
	c.Differences = diffs
	md := Markdown(c, []Collapsed{{"supcon", 1, 0.0004}})
	for _, want := range []string{
		"the mean over 2 seed(s) [95% interval of a two-level bootstrap, 1000 resamples",
		"median(target) - median(noise)", "not the median of per-image differences", "bootstrap_margin.py",
		"| method | mnist knn1 | mnist margin |",
		"| supcon (collapsed run†) | 95.0 [94.0, 96.0] | 0.0300 [0.0290, 0.0310] |",
		"| sincere | 97.0 [96.0, 98.0] | 0.0600 [0.0590, 0.0610] |",
		"| supcon, 1 | 94.5 | 0.0250 |\n| supcon, 2 | 95.5 | 0.0350 |\n| sincere, 1 | 96.5 | 0.0550 |",
		"| mnist | knn1 | +2.00 points | [+1.00, +3.00] | **yes** |",
		"| mnist | margin | +0.0010 | [-0.0020, +0.0040] | no |",
		"supcon seed 1 (margin 0.0004)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !diffs[0].Significant() || diffs[1].Significant() {
		t.Error("Significant")
	}
}

func TestFilesAndFigures(t *testing.T) {
	dir := t.TempDir()
	c := sample()
	if err := WriteJSON(filepath.Join(dir, "c.json"), c); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(filepath.Join(dir, "c.csv"), c.Results); err != nil {
		t.Fatal(err)
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "c.csv"))
	if want := "method,seed,dataset,metric,value,ci_low,ci_high\nsupcon,1,mnist,knn1,0.95,0.94,0.96\n"; !strings.HasPrefix(string(csv), want) {
		t.Errorf("csv:\n%s", csv)
	}
	target := []float32{0.99, 0.98, 0.995, 0.97, 0.9}
	noise := []float32{0.9, 0.85, 0.93, 0.8, 0.95}
	if err := SimilarityHistogram(filepath.Join(dir, "h.png"), "demo", target, noise); err != nil {
		t.Fatal(err)
	}
	if err := LossCurves(filepath.Join(dir, "l.png"), "demo", []Curve{{"a", []float64{1, 2, 3}, []float64{3, 2, 1}}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"h.png", "l.png"} {
		r, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := image.Decode(r)
		r.Close()
		if err != nil || img.Bounds().Dx() < 300 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := SimilarityHistogram(filepath.Join(dir, "e.png"), "empty", nil, nil); err == nil {
		t.Error("an empty histogram was drawn")
	}
}
