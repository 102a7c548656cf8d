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
	return &Comparison{Name: "demo", Config: "demo.yaml",
		Runs:    []Run{{"supcon", 1, "a"}, {"sincere", 1, "b"}},
		Results: []Result{{"supcon", 1, "mnist", "knn1", 0.95, 0.94, 0.96}, {"sincere", 1, "mnist", "knn1", 0.97, 0.96, 0.98}},
		Summary: []Summary{
			{"supcon", "mnist", "knn1", 0.95, 0.94, 0.96, 1}, {"supcon", "mnist", "margin", 0.03, 0.029, 0.031, 1},
			{"sincere", "mnist", "knn1", 0.97, 0.96, 0.98, 1}, {"sincere", "mnist", "margin", 0.06, 0.059, 0.061, 1},
		}}
}

func TestMarkdown(t *testing.T) {
	diffs := []Difference{
		{"sincere", "supcon", "mnist", "knn1", 0.02, 0.01, 0.03},
		{"sincere", "supcon", "mnist", "margin", 0.001, -0.002, 0.004},
	}
	md := Markdown(sample(), diffs, []Collapsed{{"supcon", 1, 0.0004}})
	for _, want := range []string{
		"| method | mnist knn1 | mnist margin |",
		"| supcon (collapsed run†) | 95.0 [94.0, 96.0] | 0.0300 [0.0290, 0.0310] |",
		"| sincere | 97.0 [96.0, 98.0] | 0.0600 [0.0590, 0.0610] |",
		"- mnist knn1: +2.00 points [+1.00, +3.00]",
		"supcon seed 1 (margin 0.0004)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "mnist margin: +") {
		t.Errorf("a difference whose interval holds 0 is listed:\n%s", md)
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
