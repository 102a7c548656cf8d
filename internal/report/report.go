// Package report renders a comparison of methods: compare.json,
// compare.csv, the markdown table, and the figures (similarity histograms
// and loss curves, with gonum/plot).
package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sincere-ml/sincere/internal/atomicfile"
)

// Run is one pretraining run of a comparison.
type Run struct {
	Method string `json:"method"`
	Seed   uint64 `json:"seed"`
	Dir    string `json:"dir"`
}

// Result is one metric of one run on one data set.
type Result struct {
	Method  string  `json:"method"`
	Seed    uint64  `json:"seed"`
	Dataset string  `json:"dataset"`
	Metric  string  `json:"metric"`
	Value   float64 `json:"value"`
	CILow   float64 `json:"ci_low"`
	CIHigh  float64 `json:"ci_high"`
}

// Summary is one metric of one method on one data set, averaged over its
// seeds, with a 95% bootstrap interval of that average.
type Summary struct {
	Method  string  `json:"method"`
	Dataset string  `json:"dataset"`
	Metric  string  `json:"metric"`
	Mean    float64 `json:"mean"`
	CILow   float64 `json:"ci_low"`
	CIHigh  float64 `json:"ci_high"`
	Seeds   int     `json:"seeds"`
}

// Comparison is compare.json.
type Comparison struct {
	Name    string    `json:"name"`
	Config  string    `json:"config"`
	Runs    []Run     `json:"runs"`
	Results []Result  `json:"results"`
	Summary []Summary `json:"summary"`
}

// Difference is a paired comparison of two methods on one metric.
type Difference struct {
	A, B             string
	Dataset, Metric  string
	Value, Low, High float64
}

// Significant reports whether the interval excludes zero.
func (d Difference) Significant() bool { return d.Low > 0 || d.High < 0 }

// Collapsed names a run whose classes are not separated.
type Collapsed struct {
	Method string
	Seed   uint64
	Margin float64
}

// WriteJSON writes compare.json atomically.
func WriteJSON(path string, c *Comparison) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// WriteCSV writes the results rows as compare.csv, atomically.
func WriteCSV(path string, rows []Result) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"method", "seed", "dataset", "metric", "value", "ci_low", "ci_high"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	for _, r := range rows {
		w.Write([]string{r.Method, strconv.FormatUint(r.Seed, 10), r.Dataset, r.Metric, f(r.Value), f(r.CILow), f(r.CIHigh)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return atomicfile.Write(path, b.Bytes())
}

// isAccuracy reports whether a metric is an accuracy (shown in percent).
func isAccuracy(metric string) bool { return metric != "margin" }

// cell formats a value with its interval: accuracies in percent.
func cell(metric string, v, lo, hi float64) string {
	if isAccuracy(metric) {
		return fmt.Sprintf("%.1f [%.1f, %.1f]", 100*v, 100*lo, 100*hi)
	}
	return fmt.Sprintf("%.4f [%.4f, %.4f]", v, lo, hi)
}

// Markdown renders the summary as a table (methods as rows, data set x
// metric as columns), then the significant paired differences and the
// collapsed runs.
func Markdown(c *Comparison, diffs []Difference, collapsed []Collapsed) string {
	var methods []string
	type col struct{ dataset, metric string }
	var cols []col
	cells := map[string]map[col]Summary{}
	seeds := 0
	for _, s := range c.Summary {
		if !slices.Contains(methods, s.Method) {
			methods = append(methods, s.Method)
		}
		k := col{s.Dataset, s.Metric}
		if !slices.Contains(cols, k) {
			cols = append(cols, k)
		}
		if cells[s.Method] == nil {
			cells[s.Method] = map[col]Summary{}
		}
		cells[s.Method][k] = s
		seeds = max(seeds, s.Seeds)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", c.Name)
	fmt.Fprintf(&b, "Mean over %d seed(s); accuracies in %%, margin = median target - median noise similarity; [95%% bootstrap interval over test images].\n\n", seeds)
	b.WriteString("| method |")
	for _, k := range cols {
		fmt.Fprintf(&b, " %s %s |", k.dataset, k.metric)
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	flagged := map[string]bool{}
	for _, x := range collapsed {
		flagged[x.Method] = true
	}
	for _, m := range methods {
		name := m
		if flagged[m] {
			name += " (collapsed run†)"
		}
		fmt.Fprintf(&b, "| %s |", name)
		for _, k := range cols {
			s, ok := cells[m][k]
			if !ok {
				b.WriteString(" - |")
				continue
			}
			fmt.Fprintf(&b, " %s |", cell(k.metric, s.Mean, s.CILow, s.CIHigh))
		}
		b.WriteString("\n")
	}
	var sig []Difference
	for _, d := range diffs {
		if d.Significant() {
			sig = append(sig, d)
		}
	}
	if len(diffs) > 0 {
		fmt.Fprintf(&b, "\n%s - %s differences whose paired 95%% bootstrap interval excludes 0:\n", diffs[0].A, diffs[0].B)
		if len(sig) == 0 {
			b.WriteString("\n- none\n")
		}
		for _, d := range sig {
			if isAccuracy(d.Metric) {
				fmt.Fprintf(&b, "\n- %s %s: %+.2f points [%+.2f, %+.2f]", d.Dataset, d.Metric, 100*d.Value, 100*d.Low, 100*d.High)
			} else {
				fmt.Fprintf(&b, "\n- %s %s: %+.4f [%+.4f, %+.4f]", d.Dataset, d.Metric, d.Value, d.Low, d.High)
			}
		}
		if len(sig) > 0 {
			b.WriteString("\n")
		}
	}
	if len(collapsed) > 0 {
		b.WriteString("\n† collapsed runs (embeddings pointing one way, or target and noise similarities indistinguishable), kept in the table:")
		for _, x := range collapsed {
			fmt.Fprintf(&b, " %s seed %d (margin %.4f);", x.Method, x.Seed, x.Margin)
		}
		b.WriteString("\n")
	}
	return b.String()
}
