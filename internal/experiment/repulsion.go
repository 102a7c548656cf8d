package experiment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
)

// RepulsionOptions says what AnalyzeRepulsion measures.
type RepulsionOptions struct {
	// Run is a finished contrastive run whose encoder is analysed; or, with
	// Init, Config (and Method, Seed, Sets) names an untrained encoder.
	Run    string
	Init   bool
	Config string
	Method string
	Seed   uint64
	Sets   []string
	// Ks are the numbers of same-class images per class in a batch; nil
	// means 2, 4, 8, ... up to half the training batch.
	Ks []int
	// Batches is the number of batches drawn for each k.
	Batches int
	// Fetch, if not nil, downloads a data set found nowhere.
	Fetch *dataset.Fetcher
	// PairStats computes the statistics of one batch; nil means the fused
	// CPU engine's pair-statistics pass (tests give the float64 reference).
	PairStats func(kernels.Params, []float32, int, int, []int) (kernels.PairStats, error)
}

// RepulsionRow is one loss at one k, pooled over the batches.
type RepulsionRow struct {
	K                int     `json:"k"`
	Classes          int     `json:"classes"`
	Rows             int     `json:"rows"`
	Loss             string  `json:"loss"`
	Pairs            int     `json:"pairs"`
	Repelled         int     `json:"repelled"`
	RepelledFraction float64 `json:"repelled_fraction"`
	RepulsiveShare   float64 `json:"repulsive_share"`
}

// RepulsionReport is repulsion.json.
type RepulsionReport struct {
	Encoder     string         `json:"encoder"`
	Dataset     string         `json:"dataset"`
	Temperature float64        `json:"temperature"`
	Views       int            `json:"views"`
	Batches     int            `json:"batches"`
	Rows        []RepulsionRow `json:"results"`
}

// AnalyzeRepulsion measures intra-class repulsion (DESIGN section 6): for
// each k it draws batches as training does (the configured augmentation and
// views, batch-norm in training mode) holding k images of each of
// min(classes, batch/k) classes, embeds them with the encoder, and asks each
// of SupCon and SINCERE, at the run's temperature, which same-class pairs
// its gradient G = dL/dS pushes apart (G_ij > 0) and what share of the
// same-class gradient does so.
func AnalyzeRepulsion(ctx context.Context, o RepulsionOptions) (*RepulsionReport, error) {
	a, err := loadRepulsionEncoder(ctx, o)
	if err != nil {
		return nil, err
	}
	cfg, m, mean, std, train := a.cfg, a.model, a.mean, a.std, a.train
	if o.Batches < 1 {
		return nil, fmt.Errorf("--batches: must be at least 1, got %d", o.Batches)
	}
	if train == nil {
		if train, err = LoadTrain(ctx, cfg.Data, o.Fetch); err != nil {
			return nil, err
		}
	}
	if mean == nil {
		mean, std = train.MeanStd()
	}
	byClass := make([][]int, len(train.Classes))
	for i, y := range train.Labels {
		byClass[y] = append(byClass[y], i)
	}
	smallest := train.Len()
	for _, c := range byClass {
		smallest = min(smallest, len(c))
	}
	ks := o.Ks
	if ks == nil {
		for k := 2; k <= cfg.Train.BatchSize/2 && k <= smallest; k *= 2 {
			ks = append(ks, k)
		}
	}
	if len(train.Classes) < 2 {
		return nil, fmt.Errorf("%s: one class only; repulsion needs negatives", cfg.Data.Dataset)
	}
	for _, k := range ks {
		if k < 2 || k > smallest {
			return nil, fmt.Errorf("--k %d: want 2 to %d (the smallest class's images)", k, smallest)
		}
	}
	pairStats := o.PairStats
	if pairStats == nil {
		if pairStats, err = fusedPairStats(cfg.Train.Workers); err != nil {
			return nil, err
		}
	}
	rep := &RepulsionReport{Encoder: a.name, Dataset: cfg.Data.Dataset, Temperature: cfg.Loss.Temperature, Views: cfg.Data.Views, Batches: o.Batches}
	losses := []kernels.Loss{kernels.SupCon, kernels.SINCERE}
	dev := m.Device()
	classesOf := func(k int) int { return min(len(train.Classes), max(2, cfg.Train.BatchSize/k)) }
	maxRows := 0
	for _, k := range ks {
		maxRows = max(maxRows, cfg.Data.Views*classesOf(k)*k)
	}
	if err := m.Prepare(maxRows, true); err != nil {
		return nil, err
	}
	xs, err := kernels.NewArena(dev, "repulsion batch", kernels.ArenaBytes(kernels.FloatBytes(maxRows*train.ImageSize())))
	if err != nil {
		return nil, err
	}
	defer xs.Free()
	xBuf, err := xs.Take(maxRows * train.ImageSize())
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		classes := classesOf(k)
		sums := make([]kernels.PairStats, len(losses))
		rows := 0
		for b := range o.Batches {
			if err := ctx.Err(); err != nil {
				return nil, ErrInterrupted
			}
			rng := rand.New(rand.NewPCG(o.Seed, uint64(k)<<32|uint64(b)))
			var picked []int
			for _, c := range rng.Perm(len(train.Classes))[:classes] {
				for _, j := range rng.Perm(len(byClass[c]))[:k] {
					picked = append(picked, byClass[c][j])
				}
			}
			sub := train.Subset(picked)
			l, err := dataset.NewLoader(sub, dataset.LoaderOptions{BatchSize: sub.Len(), Views: cfg.Data.Views, Sampler: dataset.SamplerSequential,
				Augment: cfg.Data.Augment, Seed: rng.Uint64(), Workers: 1, Mean: mean, Std: std})
			if err != nil {
				return nil, err
			}
			s := l.Stream(ctx, 0, 0)
			batch, err := s.Next()
			s.Close()
			if err != nil {
				return nil, err
			}
			x := xBuf.Sub(0, len(batch.Images))
			dev.Upload(x, batch.Images)
			out := m.Forward(encoder.Tensor{Buf: x, Shape: []int{batch.Rows(), batch.H, batch.W, batch.C}}, true)
			z := make([]float32, out.Buf.Len())
			if err := dev.Download(z, out.Buf); err != nil {
				return nil, err
			}
			d := len(z) / batch.Rows()
			rows = batch.Rows()
			for li, loss := range losses {
				p := kernels.Params{Loss: loss, Temperature: cfg.Loss.Temperature, BaseTemperature: cfg.Loss.BaseTemperature}
				st, err := pairStats(p, z, batch.Rows(), d, batch.Labels)
				if err != nil {
					return nil, fmt.Errorf("k %d: %w", k, err)
				}
				sums[li].Add(st)
			}
		}
		for li, loss := range losses {
			rep.Rows = append(rep.Rows, RepulsionRow{K: k, Classes: classes, Rows: rows, Loss: loss.String(), Pairs: sums[li].Pairs,
				Repelled: sums[li].Repelled, RepelledFraction: sums[li].RepelledFraction(), RepulsiveShare: sums[li].RepulsiveShare()})
		}
	}
	return rep, nil
}

// repulsionEncoder is the encoder AnalyzeRepulsion measures, with what it
// needs besides.
type repulsionEncoder struct {
	cfg   Config
	model *encoder.Model
	// mean and std are the normalisation its training used (nil for an
	// untrained encoder: the training split's own).
	mean, std []float32
	// name names the encoder in the report.
	name string
	// train is the training split when building the encoder read it
	// already (an untrained encoder's shape and classes are the split's),
	// else nil.
	train *dataset.Dataset
}

// loadRepulsionEncoder returns the configuration and the encoder to
// analyse.
func loadRepulsionEncoder(ctx context.Context, o RepulsionOptions) (repulsionEncoder, error) {
	if o.Init {
		if o.Config == "" {
			return repulsionEncoder{}, fmt.Errorf("--init needs --config")
		}
		method := o.Method
		if method == "" {
			method = kernels.SINCERE.String()
		}
		cfg, err := Load(o.Config, method, o.Sets)
		if err != nil {
			return repulsionEncoder{}, err
		}
		train, err := LoadTrain(ctx, cfg.Data, o.Fetch)
		if err != nil {
			return repulsionEncoder{}, err
		}
		dev, err := OpenDevice(TrainConfig{Device: kernels.DeviceCPU, Precision: kernels.PrecisionAuto, Workers: cfg.Train.Workers})
		if err != nil {
			return repulsionEncoder{}, err
		}
		m, err := encoder.New(dev, cfg.Model, [3]int{train.C, train.H, train.W}, encoder.HeadProjection, len(train.Classes), o.Seed)
		if err != nil {
			return repulsionEncoder{}, err
		}
		return repulsionEncoder{cfg: cfg, model: m, train: train,
			name: fmt.Sprintf("untrained %s of %s (seed %d)", cfg.Model.Arch, filepath.Base(o.Config), o.Seed)}, nil
	}
	if o.Run == "" {
		return repulsionEncoder{}, fmt.Errorf("give --run DIR, or --init with --config")
	}
	tr, m, err := LoadModel(o.Run)
	if err != nil {
		return repulsionEncoder{}, err
	}
	if m.Head != encoder.HeadProjection {
		return repulsionEncoder{}, fmt.Errorf("%s: a %s run has no projection head to analyse; pick a contrastive run", o.Run, tr.Method)
	}
	cfg, err := Load(filepath.Join(o.Run, ConfigFile), "", o.Sets)
	if err != nil {
		return repulsionEncoder{}, err
	}
	return repulsionEncoder{cfg: cfg, model: m, mean: slices.Clone(tr.Mean), std: slices.Clone(tr.Std), name: o.Run}, nil
}

// fusedPairStats returns the CPU loss engine's pair-statistics pass.
func fusedPairStats(workers int) (func(kernels.Params, []float32, int, int, []int) (kernels.PairStats, error), error) {
	e, err := cpu.NewLossEngine(kernels.CPUOptions{Workers: workers})
	if err != nil {
		return nil, err
	}
	return e.PairStats, nil
}
