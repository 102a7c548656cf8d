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

// Summary is one metric of one method on one data set: the mean over its
// seeds with a 95% two-level bootstrap interval (seeds resampled, then the
// test images within each resampled run), and each seed's own value.
type Summary struct {
	Method  string      `json:"method"`
	Dataset string      `json:"dataset"`
	Metric  string      `json:"metric"`
	Mean    float64     `json:"mean"`
	CILow   float64     `json:"ci_low"`
	CIHigh  float64     `json:"ci_high"`
	Seeds   int         `json:"seeds"`
	PerSeed []SeedValue `json:"per_seed"`
}

// SeedValue is one seed's value of a metric (on the whole test set).
type SeedValue struct {
	Seed  uint64  `json:"seed"`
	Value float64 `json:"value"`
}

// Comparison is compare.json.
type Comparison struct {
	Name   string `json:"name"`
	Config string `json:"config"`
	// Resamples is the number of bootstrap resamples behind every interval.
	Resamples int       `json:"resamples"`
	Runs      []Run     `json:"runs"`
	Results   []Result  `json:"results"`
	Summary   []Summary `json:"summary"`
	// Differences are the paired differences between two methods.
	Differences []Difference `json:"differences"`
}

// Difference is a paired comparison of two methods on one metric: the
// difference of their means over seeds, with the 95% interval of the
// difference under the two-level bootstrap that drew the same seeds (by
// position) and the same test images for both methods.
type Difference struct {
	A             string  `json:"a"`
	B             string  `json:"b"`
	Dataset       string  `json:"dataset"`
	Metric        string  `json:"metric"`
	Value         float64 `json:"value"`
	Low           float64 `json:"ci_low"`
	High          float64 `json:"ci_high"`
	IsSignificant bool    `json:"significant"`
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
func isAccuracy(metric string) bool { return metric != "margin" && metric != "bound" }

// value formats a value: accuracies in percent.
func value(metric string, v float64) string {
	if isAccuracy(metric) {
		return fmt.Sprintf("%.1f", 100*v)
	}
	return fmt.Sprintf("%.4f", v)
}

// cell formats a value with its interval: accuracies in percent.
func cell(metric string, v, lo, hi float64) string {
	return fmt.Sprintf("%s [%s, %s]", value(metric, v), value(metric, lo), value(metric, hi))
}

// signed formats a difference with its interval: accuracies in points.
func signed(metric string, v, lo, hi float64) (string, string) {
	if isAccuracy(metric) {
		return fmt.Sprintf("%+.2f points", 100*v), fmt.Sprintf("[%+.2f, %+.2f]", 100*lo, 100*hi)
	}
	return fmt.Sprintf("%+.4f", v), fmt.Sprintf("[%+.4f, %+.4f]", lo, hi)
}

// MarginDefinition says exactly what the margin metric is, and where it
// comes from; the README, --help and compare.md use these words.
const MarginDefinition = "margin = median(target) - median(noise) over the test images, where an image's target is " +
	"the highest cosine similarity of its embedding to a training embedding of its own class and its noise the " +
	"highest to one of another class: a difference of two medians, not the median of per-image differences " +
	"(the SINCERE authors' sim_median_margin in bootstrap_margin.py, which reports its absolute value; " +
	"here the sign is kept, so a run whose noise beats its target shows a negative margin)."

// BoundDefinition says what the bound metric is.
const BoundDefinition = "bound = the SINCERE authors' expected_bound (embed_stats.py) on the test embeddings at the run's " +
	"temperature: the mean over test images i of log(#other-class + 1) + the mean over same-class j != i of " +
	"log(e^(s_ij) / (e^(s_ij) + sum over other-class k of e^(s_ik))), s = z.z/tau; log(#other-class + 1) minus i's mean " +
	"SINCERE term, which the paper relates to the symmetrised KL divergence between a class and the rest. " +
	"Its per-run interval resamples the test images, each term computed against the whole test set."

// Markdown renders the summary as a table (methods as rows, data set x
// metric as columns, mean over seeds with its two-level interval), the
// per-seed values, every paired difference (c.Differences) with whether it
// is significant, and the collapsed runs.
func Markdown(c *Comparison, collapsed []Collapsed) string {
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
	header := func(b *strings.Builder, first string) {
		b.WriteString("| " + first + " |")
		for _, k := range cols {
			fmt.Fprintf(b, " %s %s |", k.dataset, k.metric)
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", c.Name)
	fmt.Fprintf(&b, "Each cell: the mean over %d seed(s) [95%% interval of a two-level bootstrap, %d resamples: "+
		"the seeds resampled, then the test images within each resampled run, so it covers both training "+
		"randomness and the test set]. Accuracies in %%.\n\n", seeds, c.Resamples)
	b.WriteString(MarginDefinition + "\n\n")
	if slices.ContainsFunc(cols, func(k col) bool { return k.metric == "bound" }) {
		b.WriteString(BoundDefinition + "\n\n")
	}
	flagged := map[string]bool{}
	for _, x := range collapsed {
		flagged[x.Method] = true
	}
	header(&b, "method")
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
	fmt.Fprintf(&b, "\nPer seed (each run on its whole test set; compare.csv adds each run's own 95%% interval over %d resamples of its test images):\n\n", c.Resamples)
	header(&b, "method, seed")
	for _, m := range methods {
		var seedList []uint64
		for _, k := range cols {
			for _, v := range cells[m][k].PerSeed {
				if !slices.Contains(seedList, v.Seed) {
					seedList = append(seedList, v.Seed)
				}
			}
		}
		for _, seed := range seedList {
			fmt.Fprintf(&b, "| %s, %d |", m, seed)
			for _, k := range cols {
				i := slices.IndexFunc(cells[m][k].PerSeed, func(v SeedValue) bool { return v.Seed == seed })
				if i < 0 {
					b.WriteString(" - |")
					continue
				}
				fmt.Fprintf(&b, " %s |", value(k.metric, cells[m][k].PerSeed[i].Value))
			}
			b.WriteString("\n")
		}
	}
	if diffs := c.Differences; len(diffs) > 0 {
		fmt.Fprintf(&b, "\n%s - %s, paired (the same resampled seeds and test images for both methods); "+
			"significant when the 95%% two-level interval excludes 0:\n\n", diffs[0].A, diffs[0].B)
		b.WriteString("| data set | metric | difference | 95% interval | significant |\n|---|---|---|---|---|\n")
		for _, d := range diffs {
			v, iv := signed(d.Metric, d.Value, d.Low, d.High)
			sig := "no"
			if d.Significant() {
				sig = "**yes**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", d.Dataset, d.Metric, v, iv, sig)
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
