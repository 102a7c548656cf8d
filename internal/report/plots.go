package report

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"

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
// as in the SINCERE paper's figures: both over the same bins, each bar the
// fraction of test images in it. The lowest 0.5% of values are left out of
// the axis, and the title says so.
func SimilarityHistogram(path, title string, target, noise []float32) error {
	all := make([]float64, 0, len(target)+len(noise))
	for _, v := range target {
		all = append(all, float64(v))
	}
	for _, v := range noise {
		all = append(all, float64(v))
	}
	if len(all) == 0 {
		return fmt.Errorf("%s: no similarities to draw", path)
	}
	slices.Sort(all)
	lo, hi := all[len(all)/200], all[len(all)-1]
	if hi <= lo {
		hi = lo + 1e-3
	}
	const bins = 60
	width := (hi - lo) / bins
	p := plot.New()
	p.Title.Text = title + " (lowest 0.5% not shown)"
	p.X.Label.Text = "cosine similarity to the nearest training image"
	p.Y.Label.Text = "fraction of test images per bin"
	for _, s := range []struct {
		name string
		v    []float32
		c    color.NRGBA
	}{{"noise: nearest image of another class", noise, color.NRGBA{R: 214, G: 69, B: 65, A: 150}},
		{"target: nearest image of the same class", target, color.NRGBA{R: 49, G: 104, B: 196, A: 150}}} {
		h := &plotter.Histogram{Width: width, FillColor: s.c}
		for i := range bins {
			h.Bins = append(h.Bins, plotter.HistogramBin{Min: lo + float64(i)*width, Max: lo + float64(i+1)*width})
		}
		for _, v := range s.v {
			if x := float64(v); x >= lo {
				i := min(int((x-lo)/width), bins-1)
				h.Bins[i].Weight += 1 / float64(len(s.v))
			}
		}
		h.LineStyle.Width = 0
		p.Add(h)
		p.Legend.Add(s.name, h)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.X.Min, p.X.Max = lo, hi
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

// RepulsionSeries is one loss's intra-class repulsion against the number k
// of same-class images per class in a batch.
type RepulsionSeries struct {
	Loss string
	// K, Fraction and Share are parallel: the repelled fraction of
	// same-class pairs and the repulsive share of their gradient at each k.
	K, Fraction, Share []float64
}

// RepulsionPlot draws, for each loss, the fraction of same-class pairs its
// gradient pushes apart (solid) and the repulsive share of the same-class
// gradient (dashed) against k, on a log2 axis.
func RepulsionPlot(path, title string, series []RepulsionSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "same-class images per class in a batch (k)"
	p.Y.Label.Text = "fraction"
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, s := range series {
		for _, k := range s.K {
			if !slices.ContainsFunc(ticks, func(t plot.Tick) bool { return t.Value == k }) {
				ticks = append(ticks, plot.Tick{Value: k, Label: fmt.Sprint(k)})
			}
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = 0, 1
	for i, s := range series {
		for j, what := range []struct {
			name string
			v    []float64
		}{{"repelled fraction of same-class pairs", s.Fraction}, {"repulsive share of the same-class gradient", s.Share}} {
			pts := make(plotter.XYs, len(s.K))
			for q := range s.K {
				pts[q].X, pts[q].Y = s.K[q], what.v[q]
			}
			l, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			l.Color, sc.Color = plotutil.Color(i), plotutil.Color(i)
			l.Width = vg.Points(1.5)
			if j == 1 {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			}
			p.Add(l, sc)
			p.Legend.Add(s.Loss+": "+what.name, l)
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	return savePNG(p, path, 7*vg.Inch, 4.5*vg.Inch)
}
