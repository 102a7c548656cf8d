package benchmark

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sincere-ml/sincere/internal/dataset"
)

// DataOptions configures RunData.
type DataOptions struct {
	// BatchSize and Views shape each batch (images before views).
	BatchSize, Views int
	// Batches is the number of timed batches per case, after Warmup.
	Batches, Warmup int
	// Workers lists the worker counts to measure (0 means GOMAXPROCS).
	Workers []int
	// Seed fixes the sampling and augmentation.
	Seed uint64
}

// DataCase is one pipeline to measure: a data set and a preset.
type DataCase struct {
	Name    string
	Train   *dataset.Dataset
	Augment string
}

// DataRow is one measured pipeline.
type DataRow struct {
	Dataset, Augment     string
	BatchSize, Views     int
	Workers, Batches     int
	ImagesPerSec         float64 // source images per second
	ViewsPerSec          float64 // augmented views per second
	MillisecondsPerBatch float64
}

// RunData measures the whole input pipeline (balanced sampling, V
// augmented views per image, normalisation, background workers) by pulling
// batches from a Stream as fast as they come.
func RunData(o DataOptions, cases []DataCase) ([]DataRow, error) {
	if o.BatchSize < 1 || o.Views < 1 || o.Batches < 1 || o.Warmup < 0 {
		return nil, fmt.Errorf("bench data: need batch size, views and batches >= 1")
	}
	var rows []DataRow
	for _, c := range cases {
		for _, w := range o.Workers {
			l, err := dataset.NewLoader(c.Train, dataset.LoaderOptions{BatchSize: o.BatchSize, Views: o.Views,
				Sampler: dataset.SamplerBalanced, Augment: c.Augment, Seed: o.Seed, Workers: w})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.Name, err)
			}
			need := o.Batches + o.Warmup
			if l.BatchesPerEpoch() < need {
				return nil, fmt.Errorf("%s: an epoch has %d batches, the benchmark needs %d", c.Name, l.BatchesPerEpoch(), need)
			}
			s := l.Stream(context.Background(), 0, 0)
			var start time.Time
			for i := range need {
				if i == o.Warmup {
					start = time.Now()
				}
				if b, err := s.Next(); err != nil || b == nil {
					s.Close()
					return nil, fmt.Errorf("%s: stream ended early: %v", c.Name, err)
				}
			}
			el := time.Since(start).Seconds()
			s.Close()
			imgs := float64(o.Batches * o.BatchSize)
			rows = append(rows, DataRow{Dataset: c.Name, Augment: c.Augment, BatchSize: o.BatchSize, Views: o.Views,
				Workers: l.Options().Workers, Batches: o.Batches, ImagesPerSec: imgs / el,
				ViewsPerSec: imgs * float64(o.Views) / el, MillisecondsPerBatch: el * 1e3 / float64(o.Batches)})
		}
	}
	return rows, nil
}

// WriteDataTable prints rows as an aligned table.
func WriteDataTable(w io.Writer, rows []DataRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dataset\taugment\tbatch\tviews\tworkers\tms/batch\timages/s\tviews/s\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%.0f\t%.0f\t\n", r.Dataset, r.Augment, r.BatchSize, r.Views,
			r.Workers, r.MillisecondsPerBatch, r.ImagesPerSec, r.ViewsPerSec)
	}
	return tw.Flush()
}
