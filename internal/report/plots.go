package report

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/sincere-ml/sincere/internal/atomicfile"
)

// savePNG renders a plot and writes it atomically.
func savePNG(p *plot.Plot, path string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return err
	}
	return atomicfile.Write(path, b.Bytes())
}

// SimilarityHistogram draws, for one method, the distributions over test
// images of the target similarity (to the nearest training image of the
// same class) and the noise similarity (to the nearest of another class),
// as in the SINCERE paper's figures.
func SimilarityHistogram(path, title string, target, noise []float32) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "cosine similarity to the nearest training image"
	p.Y.Label.Text = "fraction of test images"
	lo, hi := float32(1), float32(-1)
	for _, v := range append(append([]float32(nil), target...), noise...) {
		lo, hi = min(lo, v), max(hi, v)
	}
	for _, s := range []struct {
		name string
		v    []float32
		c    color.RGBA
	}{{"noise (other class)", noise, color.RGBA{R: 200, G: 60, B: 40, A: 160}}, {"target (same class)", target, color.RGBA{R: 40, G: 90, B: 200, A: 160}}} {
		vals := make(plotter.Values, len(s.v))
		for i, x := range s.v {
			vals[i] = float64(x)
		}
		h, err := plotter.NewHist(vals, 50)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		h.Normalize(1)
		h.FillColor = s.c
		h.LineStyle.Width = 0
		p.Add(h)
		p.Legend.Add(s.name, h)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.X.Min, p.X.Max = float64(lo)-0.01, float64(hi)+0.01
	return savePNG(p, path, 7*vg.Inch, 4.5*vg.Inch)
}

// Curve is one run's training loss against the optimiser step.
type Curve struct {
	Label       string
	Steps, Loss []float64
}

// LossCurves draws the training loss of every run.
func LossCurves(path, title string, curves []Curve) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "training loss"
	for i, c := range curves {
		pts := make(plotter.XYs, len(c.Steps))
		for j := range c.Steps {
			pts[j].X, pts[j].Y = c.Steps[j], c.Loss[j]
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / len(plotutil.SoftColors))
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(c.Label, l)
	}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return savePNG(p, path, 7*vg.Inch, 4.5*vg.Inch)
}
