package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/evaluate"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/npyfile"
	"github.com/sincere-ml/sincere/internal/regfile"
)

// Files a probe writes into a run directory.
const (
	ProbeFile    = "probe.json"
	OutcomesFile = "probe.gob"
	FeaturesDir  = "features"
)

// Metrics a probe reports, per data set.
const (
	MetricKNN1   = "knn1"
	MetricKNN5   = "knn5"
	MetricLinear = "linear"
	MetricMargin = "margin"
	// MetricBound is the SINCERE authors' expected_bound on the test
	// embeddings at the run's temperature (evaluate.Bound).
	MetricBound = "bound"
)

// Metrics lists the metric names in report order.
func Metrics() []string {
	return []string{MetricKNN1, MetricKNN5, MetricLinear, MetricMargin, MetricBound}
}

// A run counts as collapsed when its test embeddings point one way (mean
// pairwise cosine above collapseCosine) or its target and noise
// similarities are indistinguishable (margin below collapseMargin).
const (
	collapseCosine = 0.9
	collapseMargin = 0.001
)

// bootstrapSeed fixes the resamples, the same for every run, so that
// comparisons between runs are paired.
const bootstrapSeed = 20241127

// ProbeResult is one metric on one data set with its 95% interval.
type ProbeResult struct {
	Dataset string  `json:"dataset"`
	Metric  string  `json:"metric"`
	Value   float64 `json:"value"`
	CILow   float64 `json:"ci_low"`
	CIHigh  float64 `json:"ci_high"`
	N       int     `json:"n"`
}

// ProbeReport is a run's probe.json.
type ProbeReport struct {
	Run         string `json:"run"`
	Method      string `json:"method"`
	Seed        uint64 `json:"seed"`
	ModelSHA256 string `json:"model_sha256"`
	// Probe is the settings the probe ran with.
	Probe ProbeConfig `json:"probe"`
	// MeanCosine is the mean cosine similarity between pairs of the run's
	// own test embeddings: near 1 when they all point one way.
	MeanCosine float64       `json:"mean_cosine"`
	Collapsed  bool          `json:"collapsed"`
	Results    []ProbeResult `json:"results"`
}

// Outcomes are a probe's per-example results on one test split: what
// paired bootstraps and the similarity histograms need.
type Outcomes struct {
	Dataset            string
	Labels             []int
	KNN1, KNN5, Linear []float64 // 1 where right, 0 where wrong
	Target, Noise      []float32 // largest similarity to own / other class
	Bound              []float64 // each image's term of the bound (NaN without a same-class partner)
}

// Statistic returns the bootstrap statistic of a metric.
func (o *Outcomes) Statistic(metric string) evaluate.Statistic {
	switch metric {
	case MetricKNN1:
		return evaluate.MeanOf(o.KNN1)
	case MetricKNN5:
		return evaluate.MeanOf(o.KNN5)
	case MetricLinear:
		return evaluate.MeanOf(o.Linear)
	case MetricBound:
		return evaluate.MeanOfDefined(o.Bound)
	}
	return evaluate.MarginOf(o.Target, o.Noise)
}

// probeSet is one data set a probe evaluates.
type probeSet struct {
	name        string
	train, test *dataset.Dataset
}

// Probe evaluates a finished run: 1-NN, similarity-weighted 5-NN and the
// margin on the L2-normalised projection output (encoder features for the
// cross-entropy baseline), and a linear probe on the encoder features, on
// the run's own test split and on every transfer data set (the config's
// probe.datasets and opt.Extra), each against its own training split. It
// writes probe.json and probe.gob into the run directory and caches the
// extracted features there. The run directory is locked meanwhile (see
// package runlock).
func Probe(ctx context.Context, dir string, opt ProbeOptions) (*ProbeReport, []Outcomes, error) {
	rep := opt.Reporter
	if rep == nil {
		rep = nopReporter{}
	}
	if err := checkFinished(dir); err != nil {
		return nil, nil, err
	}
	ctx, unlock, err := lockRun(ctx, dir, "sincere probe", opt.WaitLock, rep)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	return probe(ctx, dir, opt.Extra, opt.Fetch, rep, setCache{})
}

// ProbeOptions says what a probe evaluates besides the run's configured
// data sets, and how.
type ProbeOptions struct {
	// Extra lists transfer data sets to probe besides probe.datasets.
	Extra []string
	// Fetch, if not nil, downloads data sets found nowhere.
	Fetch *dataset.Fetcher
	// Reporter, if not nil, is told about progress.
	Reporter Reporter
	// WaitLock waits for another process that holds the run directory's
	// lock, instead of failing at once naming it.
	WaitLock bool
}

// setCache keeps the data sets a comparison's probes load, so that each is
// read once: by name, training subset and class filter.
type setCache map[string]probeSet

// probe is Probe with a data set cache.
func probe(ctx context.Context, dir string, extra []string, fetch *dataset.Fetcher, rep Reporter, cached setCache) (*ProbeReport, []Outcomes, error) {
	if rep == nil {
		rep = nopReporter{}
	}
	if err := checkFinished(dir); err != nil {
		return nil, nil, err
	}
	cfg, err := Load(filepath.Join(dir, ConfigFile), "", nil)
	if err != nil {
		return nil, nil, err
	}
	modelPath := filepath.Join(dir, ModelFile)
	tr, err := LoadTrained(modelPath)
	if err != nil {
		return nil, nil, err
	}
	if err := tr.checkRun(cfg); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", modelPath, err)
	}
	if _, err := atomicfile.Clean(dir, ProbeFile, OutcomesFile); err != nil {
		return nil, nil, err
	}
	sum, err := fileSHA256(modelPath)
	if err != nil {
		return nil, nil, err
	}
	dev, err := OpenDevice(cfg.Train)
	if err != nil {
		return nil, nil, err
	}
	m, err := encoder.New(dev, tr.Model, tr.Input, tr.Head, tr.NumClasses, tr.Seed)
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	if err := m.Restore(tr.Weights); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", modelPath, err)
	}
	sets, err := probeSets(ctx, cfg, extra, fetch, cached)
	if err != nil {
		return nil, nil, err
	}
	cache, err := openFeatureCache(filepath.Join(dir, FeaturesDir), sum)
	if err != nil {
		return nil, nil, err
	}
	report := &ProbeReport{Run: dir, Method: tr.Method, Seed: tr.Seed, ModelSHA256: sum, Probe: cfg.Probe}
	var outcomes []Outcomes
	for i, s := range sets {
		if s.train.C != tr.Input[0] || s.train.H != tr.Input[1] || s.train.W != tr.Input[2] {
			return nil, nil, fmt.Errorf("%s: images of %dx%dx%d, the encoder takes %dx%dx%d", s.name,
				s.train.C, s.train.H, s.train.W, tr.Input[0], tr.Input[1], tr.Input[2])
		}
		rep.Logf("%s: probing %s (%d train, %d test images)", dir, s.name, s.train.Len(), s.test.Len())
		o, results, meanCos, err := probeOne(m, tr, cfg, s, cache)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if i == 0 {
			report.MeanCosine = meanCos
			report.Collapsed = meanCos > collapseCosine
			for _, r := range results {
				if r.Metric == MetricMargin && r.Value < collapseMargin {
					report.Collapsed = true
				}
			}
		}
		report.Results = append(report.Results, results...)
		outcomes = append(outcomes, *o)
	}
	if err := lockLost(ctx, dir); err != nil {
		return nil, nil, err
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, ProbeFile), append(b, '\n')); err != nil {
		return nil, nil, err
	}
	return report, outcomes, writeGob(filepath.Join(dir, OutcomesFile), outcomes)
}

// LoadOutcomes reads a probed run's per-example outcomes.
func LoadOutcomes(dir string) ([]Outcomes, error) {
	var o []Outcomes
	if err := readGob(filepath.Join(dir, OutcomesFile), "probe outcomes", &o); err != nil {
		return nil, err
	}
	return o, nil
}

// probeNames lists the data sets a probe evaluates, each once: the run's
// own, then probe.datasets, then extra.
func probeNames(cfg Config, extra []string) []string {
	names := []string{cfg.Data.Dataset}
	for _, n := range append(slices.Clone(cfg.Probe.Datasets), extra...) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// probeSets loads the run's own data set (with its class filter) and the
// transfer sets, each training split cut to probe.train_subset, taking what
// the cache holds.
func probeSets(ctx context.Context, cfg Config, extra []string, fetch *dataset.Fetcher, cached setCache) ([]probeSet, error) {
	names := probeNames(cfg, extra)
	root := cfg.Data.root()
	var sets []probeSet
	for i, name := range names {
		if err := checkDatasetName(name); err != nil {
			return nil, err
		}
		var classes []int
		if i == 0 {
			classes = cfg.Data.Classes
		}
		key := fmt.Sprintf("%s|%s|%d|%v|%d|%d", name, root, cfg.Probe.TrainSubset, classes, cfg.Data.ImageSize, cfg.Data.Channels)
		if s, ok := cached[key]; ok {
			sets = append(sets, s)
			continue
		}
		train, test, err := cfg.Data.open(ctx, name, fetch)
		if err != nil {
			return nil, err
		}
		if test == nil {
			return nil, fmt.Errorf("%s has no test split to evaluate on", name)
		}
		if train, err = shapeSplit(train, DataConfig{Subset: cfg.Probe.TrainSubset, Classes: classes}); err != nil {
			return nil, err
		}
		if test, err = shapeSplit(test, DataConfig{Classes: classes}); err != nil {
			return nil, err
		}
		cached[key] = probeSet{name: name, train: train, test: test}
		sets = append(sets, cached[key])
	}
	return sets, nil
}

// probeOne evaluates one data set and returns, besides the outcomes and
// results, the mean pairwise cosine of the test embeddings.
func probeOne(m *encoder.Model, tr *Trained, cfg Config, s probeSet, cache *featureCache) (*Outcomes, []ProbeResult, float64, error) {
	pc := cfg.Probe
	trF, trE, err := cache.get(m, tr, s.name+"-train", s.train)
	if err != nil {
		return nil, nil, 0, err
	}
	teF, teE, err := cache.get(m, tr, s.name+"-test", s.test)
	if err != nil {
		return nil, nil, 0, err
	}
	trL, teL := labelsOf(s.train), labelsOf(s.test)
	nb, err := evaluate.FindNeighbours(m.Device(), teE.v, teL, trE.v, trL, teE.d, 5)
	if err != nil {
		return nil, nil, 0, err
	}
	pred, err := evaluate.LinearProbe(trF.v, trL, teF.v, trF.d, len(s.train.Classes), pc.linear())
	if err != nil {
		return nil, nil, 0, err
	}
	bound, err := evaluate.Bound(teE.v, teL, teE.d, cfg.Loss.Temperature, cfg.Train.Workers)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("bound: %w", err)
	}
	o := &Outcomes{Dataset: s.name, Labels: teL, KNN1: evaluate.Correct(nb.Predict1(), teL),
		KNN5: evaluate.Correct(nb.PredictWeighted(), teL), Linear: evaluate.Correct(pred, teL), Target: nb.Target, Noise: nb.Noise, Bound: bound}
	var stats []evaluate.Statistic
	for _, metric := range Metrics() {
		stats = append(stats, o.Statistic(metric))
	}
	var results []ProbeResult
	for i, iv := range evaluate.BootstrapAll(len(teL), pc.Bootstrap, bootstrapSeed, stats) {
		results = append(results, ProbeResult{Dataset: s.name, Metric: Metrics()[i], Value: iv.Value, CILow: iv.Low, CIHigh: iv.High, N: len(teL)})
	}
	return o, results, evaluate.MeanCosine(teE.v, teE.d), nil
}

func labelsOf(d *dataset.Dataset) []int {
	out := make([]int, d.Len())
	for i, y := range d.Labels {
		out[i] = int(y)
	}
	return out
}

// matrix is a host matrix of rows of d values.
type matrix struct {
	v []float32
	d int
}

// featureCache keeps a run's extracted features in its features folder,
// valid for one model file (by its SHA-256).
type featureCache struct {
	dir string
}

// openFeatureCache empties the folder if it was made for another model. A
// symbolic link in its place is refused: the cache is written into.
func openFeatureCache(dir, modelSum string) (*featureCache, error) {
	if st, err := os.Lstat(dir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s: is %s, not the run's own feature folder (remove it)", dir, regfile.Kind(st.Mode()))
	}
	if _, err := atomicfile.Clean(dir); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	stamp := filepath.Join(dir, "MODEL_SHA256")
	if b, err := regfile.ReadAll(stamp, "model stamp", 64); err != nil || string(b) != modelSum {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(stamp, []byte(modelSum)); err != nil {
			return nil, err
		}
	}
	return &featureCache{dir: dir}, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// get returns the encoder features and the embeddings (L2-normalised) of a
// split, from the cache or by running the encoder in evaluation mode.
func (c *featureCache) get(m *encoder.Model, tr *Trained, key string, d *dataset.Dataset) (matrix, matrix, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %d %d", key, d.Len(), d.ImageSize())
	h.Write(d.Pixels)
	base := filepath.Join(c.dir, unsafeName.ReplaceAllString(key, "_")+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	fp, ep := base+"-features.npy", base+"-embeddings.npy"
	ed := embedWidth(m)
	// A cached file is used only with the shape the model gives and finite
	// values; anything else is computed again.
	if f, n, fd, err := npyfile.ReadMatrix(fp); err == nil && n == d.Len() && fd == m.FeatureDim && allFinite(f) {
		if e, n2, ed2, err := npyfile.ReadMatrix(ep); err == nil && n2 == d.Len() && ed2 == ed && allFinite(e) {
			return matrix{f, fd}, matrix{e, ed}, nil
		}
	}
	f, e, err := extract(m, tr, d)
	if err != nil {
		return matrix{}, matrix{}, err
	}
	if err := npyfile.WriteMatrix(fp, f.v, d.Len(), f.d); err != nil {
		return matrix{}, matrix{}, err
	}
	if err := npyfile.WriteMatrix(ep, e.v, d.Len(), e.d); err != nil {
		return matrix{}, matrix{}, err
	}
	return f, e, nil
}

// embedWidth is the width of a model's embeddings: the projection head's
// output, or the features of a model without one (a ce run).
func embedWidth(m *encoder.Model) int {
	if m.Head == encoder.HeadProjection {
		return m.OutDim()
	}
	return m.FeatureDim
}

// extractBatch is the number of images feature extraction runs at once.
const extractBatch = 500

// evalLoader feeds a split to the encoder as evaluation does: in order,
// extractBatch images at a time, one view without augmentation, normalised
// with the run's training mean and std.
func evalLoader(tr *Trained, d *dataset.Dataset) (*dataset.Loader, error) {
	return dataset.NewLoader(d, dataset.LoaderOptions{BatchSize: extractBatch, Views: 1, Sampler: dataset.SamplerSequential,
		Augment: dataset.AugmentNone, Mean: tr.Mean, Std: tr.Std, Workers: 1})
}

// extract runs the encoder (and the projection head) over a split in
// evaluation mode, without augmentation, normalised as in training.
func extract(m *encoder.Model, tr *Trained, d *dataset.Dataset) (matrix, matrix, error) {
	l, err := evalLoader(tr, d)
	if err != nil {
		return matrix{}, matrix{}, err
	}
	dev := m.Device()
	if err := m.Prepare(extractBatch, false); err != nil {
		return matrix{}, matrix{}, err
	}
	xs, err := kernels.NewArena(dev, "probe batch", kernels.ArenaBytes(kernels.FloatBytes(extractBatch*d.ImageSize())))
	if err != nil {
		return matrix{}, matrix{}, err
	}
	defer xs.Free()
	xBuf, err := xs.Take(extractBatch * d.ImageSize())
	if err != nil {
		return matrix{}, matrix{}, err
	}
	fd, ed := m.FeatureDim, embedWidth(m)
	feat, emb := make([]float32, d.Len()*fd), make([]float32, d.Len()*ed)
	s := l.Stream(context.Background(), 0, 0)
	defer s.Close()
	row := 0
	for {
		b, err := s.Next()
		if err != nil {
			return matrix{}, matrix{}, err
		}
		if b == nil {
			break
		}
		x := xBuf.Sub(0, len(b.Images))
		dev.Upload(x, b.Images)
		f := m.Features(encoder.Tensor{Buf: x, Shape: []int{b.Rows(), b.H, b.W, b.C}})
		if err := dev.Download(feat[row*fd:(row+b.Rows())*fd], f.Buf); err != nil {
			return matrix{}, matrix{}, err
		}
		if m.Head == encoder.HeadProjection {
			z := m.HeadNet.Forward(f, false)
			if err := dev.Download(emb[row*ed:(row+b.Rows())*ed], z.Buf); err != nil {
				return matrix{}, matrix{}, err
			}
		}
		row += b.Rows()
	}
	if m.Head != encoder.HeadProjection {
		copy(emb, feat)
		for i := range d.Len() {
			r := emb[i*ed : (i+1)*ed]
			var n float64
			for _, v := range r {
				n += float64(v) * float64(v)
			}
			inv := 1 / math.Max(math.Sqrt(n), 1e-12)
			for j := range r {
				r[j] = float32(float64(r[j]) * inv)
			}
		}
	}
	return matrix{feat, fd}, matrix{emb, ed}, nil
}

// allFinite reports whether no value is NaN or infinite.
func allFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// fileSHA256 hashes a regular file.
func fileSHA256(path string) (string, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
