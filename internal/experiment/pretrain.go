package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/backend"
	"github.com/sincere-ml/sincere/internal/regfile"
)

// Reporter is told how training goes: a progress bar on a terminal, log
// lines otherwise, nothing with --quiet.
type Reporter interface {
	// Logf prints a line about the run.
	Logf(format string, args ...any)
	// StartEpoch begins epoch (1-based) of epochs, which has batches
	// batches, starting at batch from.
	StartEpoch(epoch, epochs, from, batches int)
	// Step reports a finished batch (1-based within the epoch).
	Step(batch int, loss, lr, imagesPerSec float64)
	// EndEpoch closes the epoch.
	EndEpoch(epoch int, loss, imagesPerSec float64)
}

// PretrainOptions says which run to make.
type PretrainOptions struct {
	// Method is supcon, sincere, eps-supinfonce or ce.
	Method string
	// Seed fixes initialisation, sampling and augmentation.
	Seed uint64
	// Out is the folder holding <config name>/<method>-seed<S>.
	Out string
	// Resume continues the run from its checkpoint (a run without one
	// starts from the beginning; a finished run is left as it is).
	Resume bool
	// ResumeHint says how to continue an interrupted run, in the error;
	// "" means pretrain's "continue with --resume".
	ResumeHint string
	// Reporter, if not nil, is told about progress.
	Reporter Reporter
	// Fetch, if not nil, downloads a data set found nowhere.
	Fetch *dataset.Fetcher
	// WaitLock waits for another process that holds the run directory's
	// lock, instead of failing at once naming it.
	WaitLock bool
	// locked says that the caller holds the run directory's lock.
	locked bool
	// loadTrain, if not nil, replaces LoadTrain (a comparison loads each
	// training set once).
	loadTrain func(context.Context, DataConfig, *dataset.Fetcher) (*dataset.Dataset, error)
}

// ErrInterrupted is returned when the context ends during training, after
// the checkpoint is written.
var ErrInterrupted = errors.New("interrupted")

// RunDir is the folder of one run.
func RunDir(out, name, method string, seed uint64) string {
	return filepath.Join(out, name, fmt.Sprintf("%s-seed%d", method, seed))
}

// Finished reports whether the run in dir has its final model.
func Finished(dir string) bool { return fileExists(filepath.Join(dir, ModelFile)) }

// checkFinished returns an error naming dir unless it holds a finished run:
// what the commands that read a run's model say.
func checkFinished(dir string) error {
	if !Finished(dir) {
		return fmt.Errorf("%s: no finished run here (no %s); pretrain it first", dir, ModelFile)
	}
	return nil
}

// isContrastive reports whether a method trains through a contrastive loss.
func isContrastive(method string) bool { return method != MethodCE }

// Trainer holds a prepared run: data, loader, device and model, and the
// step's own device memory (the batch, its labels, the loss's gradient and
// the step's two scalars), allocated once.
type Trainer struct {
	cfg    Config
	method string
	seed   uint64
	dev    kernels.Device
	model  *encoder.Model
	loader *dataset.Loader
	train  *dataset.Dataset
	mean   []float32
	std    []float32
	params kernels.Params
	// Device memory of a step: images, labels, dL/d(output) and the step's
	// scalars (loss, squared gradient norm).
	io       *kernels.Arena
	x, dout  kernels.Buffer
	labels   kernels.Ints
	stats    kernels.Scalars
	labels32 []int32
	read     [2]float64
	last     StepStats
	profile  bool
}

// StepStats is what the last step measured.
type StepStats struct {
	// Loss is the batch's loss; GradNorm the L2 norm of every gradient.
	Loss, GradNorm float64
}

// OpenDevice returns the device a run computes on: train.device,
// train.precision and train.workers.
func OpenDevice(t TrainConfig) (kernels.Device, error) {
	dev, err := backend.OpenDevice(t.Device, kernels.Options{CPU: kernels.CPUOptions{Workers: t.Workers},
		CUDA: kernels.CUDAOptions{Precision: t.Precision}})
	if err != nil {
		return nil, fmt.Errorf("train.device %s: %w", t.Device, err)
	}
	return dev, nil
}

// NewTrainer loads the data and builds the model of a run.
func NewTrainer(ctx context.Context, cfg Config, method string, seed uint64, fetch *dataset.Fetcher) (*Trainer, error) {
	return newTrainer(ctx, cfg, method, seed, fetch, LoadTrain)
}

func newTrainer(ctx context.Context, cfg Config, method string, seed uint64, fetch *dataset.Fetcher,
	load func(context.Context, DataConfig, *dataset.Fetcher) (*dataset.Dataset, error)) (*Trainer, error) {
	if !slices.Contains(Methods(), method) {
		return nil, fmt.Errorf("unknown method %q", method)
	}
	dev, err := OpenDevice(cfg.Train)
	if err != nil {
		return nil, err
	}
	train, err := load(ctx, cfg.Data, fetch)
	if err != nil {
		return nil, err
	}
	mean, std := train.MeanStd()
	loader, err := dataset.NewLoader(train, dataset.LoaderOptions{BatchSize: cfg.Train.BatchSize, Views: cfg.Data.Views,
		Sampler: cfg.Data.Sampler, Augment: cfg.Data.Augment, Seed: seed, Workers: cfg.Data.Workers, Mean: mean, Std: std})
	if err != nil {
		return nil, fmt.Errorf("train.batch_size: %w", err)
	}
	head := encoder.HeadProjection
	if !isContrastive(method) {
		head = encoder.HeadClassifier
	}
	model, err := encoder.New(dev, cfg.Model, [3]int{train.C, train.H, train.W}, head, len(train.Classes), seed)
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, method: method, seed: seed, dev: dev, model: model, loader: loader, train: train, mean: mean, std: std}
	if isContrastive(method) {
		l, _ := kernels.ParseLoss(method)
		t.params = kernels.Params{Loss: l, Temperature: cfg.Loss.Temperature, Epsilon: cfg.Loss.Epsilon, BaseTemperature: cfg.Loss.BaseTemperature}
	}
	rows := cfg.Train.BatchSize * cfg.Data.Views
	if err := t.allocate(rows, train.ImageSize()); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// allocate prepares the model's activations and the step's memory for
// batches of rows rows: everything a step needs, so that steps allocate
// nothing.
func (t *Trainer) allocate(rows, imageSize int) error {
	if err := t.model.Prepare(rows, true); err != nil {
		return err
	}
	out := t.model.OutDim()
	var err error
	if t.io, err = kernels.NewArena(t.dev, "batch", kernels.ArenaBytes(kernels.FloatBytes(rows*imageSize),
		kernels.FloatBytes(rows*out), 4*rows, 8*len(t.read))); err != nil {
		return err
	}
	if t.x, err = t.io.Take(rows * imageSize); err != nil {
		return err
	}
	if t.dout, err = t.io.Take(rows * out); err != nil {
		return err
	}
	if t.labels, err = t.io.TakeInts(rows); err != nil {
		return err
	}
	t.stats, err = t.io.TakeScalars(len(t.read))
	t.labels32 = make([]int32, rows)
	return err
}

// Close returns the run's device memory.
func (t *Trainer) Close() error {
	err := t.model.Close()
	if t.io != nil {
		err = errors.Join(err, t.io.Free())
		t.io = nil
	}
	return err
}

// LoadTrain loads the training split a data configuration describes,
// filtered to its classes and cut to its stratified subset (the same images
// for every method and seed).
func LoadTrain(ctx context.Context, d DataConfig, fetch *dataset.Fetcher) (*dataset.Dataset, error) {
	train, _, err := d.open(ctx, d.Dataset, fetch)
	if err != nil {
		return nil, err
	}
	if train, err = shapeSplit(train, d); err != nil {
		return nil, err
	}
	// A contrastive loss needs negatives, a classifier two outputs.
	if k := slices.IndexFunc(train.ClassCounts(), func(n int) bool { return n > 0 }); k < 0 ||
		!slices.ContainsFunc(train.ClassCounts()[k+1:], func(n int) bool { return n > 0 }) {
		return nil, fmt.Errorf("data: %s has training images of fewer than two classes (data.classes %v); every method needs at least two", d.Dataset, d.Classes)
	}
	return train, nil
}

// root is the data root: data.root, else the default one.
func (d DataConfig) root() string {
	if d.Root == "" {
		return dataset.DefaultRoot()
	}
	return d.Root
}

// open loads the splits of the data set name (the run's own or another) as
// the data configuration reads them: from its root, a folder's images at
// its image size and channels.
func (d DataConfig) open(ctx context.Context, name string, fetch *dataset.Fetcher) (train, test *dataset.Dataset, err error) {
	return dataset.Open(ctx, dataset.Spec{Name: name, Root: d.root(), Size: d.ImageSize, Channels: d.Channels, Fetch: fetch})
}

// shapeSplit applies the class filter and the subset to a split.
func shapeSplit(s *dataset.Dataset, d DataConfig) (*dataset.Dataset, error) {
	var err error
	if len(d.Classes) > 0 {
		if s, err = s.FilterClasses(d.Classes); err != nil {
			return nil, fmt.Errorf("data.classes: %w", err)
		}
	}
	if d.Subset > 0 && d.Subset < s.Len() {
		if s, err = dataset.StratifiedSubset(s, d.Subset, 0); err != nil {
			return nil, fmt.Errorf("data.subset: %w", err)
		}
	}
	return s, nil
}

// Model returns the network being trained.
func (t *Trainer) Model() *encoder.Model { return t.model }

// Loader returns the training batches.
func (t *Trainer) Loader() *dataset.Loader { return t.loader }

// Device returns the device the run computes on.
func (t *Trainer) Device() kernels.Device { return t.dev }

// Last returns what the last step measured.
func (t *Trainer) Last() StepStats { return t.last }

// SetProfile makes steps mark the device timer: "upload", "loss", "update"
// and each layer's "<kind> forward" and "<kind> backward" (see
// encoder.Model.SetProfile). The caller starts the timer and reads it.
func (t *Trainer) SetProfile(on bool) {
	t.profile = on
	if on {
		t.model.SetProfile(t.dev.Timer())
	} else {
		t.model.SetProfile(nil)
	}
}

// mark ends a profiled phase.
func (t *Trainer) mark(name string) {
	if t.profile {
		t.dev.Timer().Mark(name)
	}
}

// Step trains on one batch at the given learning rate and returns the loss.
// Its work is queued on the device without waiting, and the step syncs
// once, at its end, reading two scalars: the loss and the squared norm of
// every gradient, which is also the step's non-finite flag (a NaN or Inf
// in any gradient makes it one). When either is NaN or infinite the update
// is skipped on the device, the weights stay as they were, and Step returns
// an error.
func (t *Trainer) Step(b *dataset.Batch, lr float64) (float64, error) {
	rows := b.Rows()
	m, dev := t.model, t.dev
	if rows*b.C*b.H*b.W != len(b.Images) || rows > len(t.labels32) || rows*b.C*b.H*b.W > t.x.Len() {
		return 0, fmt.Errorf("batch of %d rows of %dx%dx%d does not fit the run's %d", rows, b.C, b.H, b.W, len(t.labels32))
	}
	x := encoder.Tensor{Buf: t.x.Sub(0, len(b.Images)), Shape: []int{rows, b.H, b.W, b.C}}
	dev.Upload(x.Buf, b.Images)
	for i, y := range b.Labels {
		t.labels32[i] = int32(y)
	}
	labels := t.labels.Sub(0, rows)
	dev.UploadInts(labels, t.labels32[:rows])
	t.mark("upload")
	out := m.Forward(x, true)
	dout := t.dout.Sub(0, out.Buf.Len())
	loss, sq := t.stats.Sub(0, 1), t.stats.Sub(1, 1)
	if isContrastive(t.method) {
		dev.ContrastiveLoss(t.params, out.Buf, rows, m.OutDim(), labels, dout, loss)
	} else {
		dev.SoftmaxCrossEntropy(rows, m.OutDim(), out.Buf, labels, dout, loss)
	}
	t.mark("loss")
	m.ZeroGrads()
	m.Backward(encoder.Tensor{Buf: dout, Shape: out.Shape})
	m.GradSumSquares(sq)
	m.SGD(float32(lr), float32(t.cfg.Train.Momentum), float32(t.cfg.Train.WeightDecay), t.stats)
	t.mark("update")
	if err := dev.ReadScalars(t.read[:], t.stats); err != nil {
		return 0, err
	}
	l, s := t.read[0], t.read[1]
	t.last = StepStats{Loss: l, GradNorm: math.Sqrt(s)}
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return l, fmt.Errorf("the loss is %v", l)
	}
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return l, fmt.Errorf("the gradient norm is %v", math.Sqrt(s))
	}
	return l, nil
}

// metric is one line of metrics.jsonl.
type metric struct {
	Event        string  `json:"event"`
	Epoch        int     `json:"epoch"`
	Batch        int     `json:"batch,omitempty"`
	Step         int     `json:"step"`
	Loss         float64 `json:"loss"`
	LR           float64 `json:"lr,omitempty"`
	ImagesPerSec float64 `json:"images_per_sec"`
	Seconds      float64 `json:"seconds,omitempty"`
	// GradNorm is the L2 norm of every gradient at the logged step.
	GradNorm float64 `json:"grad_norm,omitempty"`
	// DeviceMiB is the device memory the run holds (arenas and the
	// device's own scratch).
	DeviceMiB float64 `json:"device_mib,omitempty"`
}

// Pretrain runs (or resumes, or finds finished) one pretraining run and
// returns its directory. The checkpoint is written every
// train.checkpoint_every steps, at the end of every epoch and when ctx ends
// (then the error is ErrInterrupted); a NaN or Inf stops the run with an
// error naming the step and leaves the last good checkpoint. The run
// directory is locked meanwhile (see package runlock).
func Pretrain(ctx context.Context, cfg Config, opt PretrainOptions) (string, error) {
	rep := opt.Reporter
	if rep == nil {
		rep = nopReporter{}
	}
	if err := CheckPlainName(cfg.Name); err != nil {
		return "", fmt.Errorf("name: %w", err)
	}
	if !slices.Contains(Methods(), opt.Method) {
		return "", fmt.Errorf("unknown method %q", opt.Method)
	}
	dir := RunDir(opt.Out, cfg.Name, opt.Method, opt.Seed)
	if !opt.locked {
		lctx, unlock, err := lockRun(ctx, dir, "sincere pretrain", opt.WaitLock, rep)
		if err != nil {
			return dir, err
		}
		defer unlock()
		ctx = lctx
	}
	ckptPath := filepath.Join(dir, CheckpointFile)
	cfgPath := filepath.Join(dir, ConfigFile)
	cfgYAML, err := cfg.YAML()
	if err != nil {
		return dir, err
	}
	digest, err := cfg.runDigest()
	if err != nil {
		return dir, err
	}
	changed := func() error {
		return fmt.Errorf("%s: the configuration changed since this run was trained (compare with %s); remove the run to train it again", dir, cfgPath)
	}
	rebuild := false // a finished run whose model file is unreadable
	if Finished(dir) && opt.Resume {
		if _, err := LoadTrained(filepath.Join(dir, ModelFile)); err != nil {
			if !fileExists(ckptPath) {
				return dir, fmt.Errorf("%w; the run has no checkpoint to rebuild it from: remove the run to train it again", err)
			}
			rep.Logf("%v; rebuilding it from the checkpoint", err)
			rebuild = true
		}
	}
	if Finished(dir) && !rebuild {
		if !opt.Resume {
			return dir, fmt.Errorf("%s already holds a finished run; remove it or choose another --out", dir)
		}
		if err := checkRunConfig(dir, cfg); errors.Is(err, errRunChanged) {
			return dir, changed()
		} else if err != nil {
			return dir, err
		}
		// The same training: keep the run, and its config.yaml up to
		// date with the settings that do not change it (the probe's).
		if err := atomicfile.Write(cfgPath, cfgYAML); err != nil {
			return dir, err
		}
		rep.Logf("%s: already finished", dir)
		return dir, nil
	}
	if fileExists(ckptPath) && !opt.Resume {
		return dir, fmt.Errorf("%s holds an unfinished run; continue it with --resume, or remove it", dir)
	}
	var ck *Checkpoint
	if opt.Resume && fileExists(ckptPath) {
		if ck, err = loadCheckpoint(ckptPath); err != nil {
			return dir, err
		}
		if ck.ConfigDigest != digest {
			return dir, changed()
		}
		if err := ck.checkRun(opt.Method, opt.Seed, cfg.Train.Epochs, 0); err != nil {
			return dir, fmt.Errorf("%s: %w", ckptPath, err)
		}
	}
	load := opt.loadTrain
	if load == nil {
		load = LoadTrain
	}
	t, err := newTrainer(ctx, cfg, opt.Method, opt.Seed, opt.Fetch, load)
	if err != nil {
		return dir, err
	}
	defer t.Close()
	if ck != nil {
		if err := ck.checkRun(opt.Method, opt.Seed, cfg.Train.Epochs, t.loader.BatchesPerEpoch()); err != nil {
			return dir, fmt.Errorf("%s: %w", ckptPath, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dir, err
	}
	// What a killed process was writing when it died.
	if _, err := atomicfile.Clean(dir, runFiles...); err != nil {
		return dir, err
	}
	if err := atomicfile.Write(cfgPath, cfgYAML); err != nil {
		return dir, err
	}
	m := t.model
	if ck == nil {
		ck = &Checkpoint{Format: checkpointFormat, ConfigDigest: digest, Method: opt.Method, Seed: opt.Seed}
		rep.Logf("%s: %s, %s encoder (%d parameters) on %s, %d training images, %d batches of %d x %d views per epoch",
			dir, opt.Method, cfg.Model.Arch, m.ParamCount(), cfg.Data.Dataset, t.train.Len(), t.loader.BatchesPerEpoch(), cfg.Train.BatchSize, cfg.Data.Views)
	} else {
		if err := m.Restore(ck.Weights); err != nil {
			return dir, fmt.Errorf("%s: %w", ckptPath, err)
		}
		rep.Logf("%s: resuming at epoch %d, batch %d (step %d)", dir, ck.Epoch+1, ck.Batch, ck.Step)
	}
	metricsPath := filepath.Join(dir, MetricsFile)
	mf, err := openMetrics(metricsPath, ck.MetricsBytes)
	if err != nil {
		return dir, err
	}
	defer mf.Close()
	emit := func(v metric) error {
		b, _ := json.Marshal(v)
		if _, err := mf.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("%s: %w", metricsPath, err)
		}
		return nil
	}
	saveCheckpoint := func() error {
		if err := lockLost(ctx, dir); err != nil {
			return err
		}
		off, err := mf.Seek(0, 1)
		if err != nil {
			return err
		}
		if err := mf.Sync(); err != nil {
			return err
		}
		ck.MetricsBytes = off
		if ck.Weights, err = m.Snapshot(true); err != nil {
			return err
		}
		return ck.save(ckptPath)
	}

	perEpoch := t.loader.BatchesPerEpoch()
	total := cfg.Train.Epochs * perEpoch
	for ck.Epoch < cfg.Train.Epochs {
		rep.StartEpoch(ck.Epoch+1, cfg.Train.Epochs, ck.Batch, perEpoch)
		stream := t.loader.Stream(ctx, ck.Epoch, ck.Batch)
		epochStart, windowStart, windowImages := time.Now(), time.Now(), 0
		epochImages := 0
		for {
			if ctx.Err() != nil {
				stream.Close()
				if err := saveCheckpoint(); err != nil { // refuses when the lock was lost
					return dir, err
				}
				hint := opt.ResumeHint
				if hint == "" {
					hint = "continue with --resume"
				}
				return dir, fmt.Errorf("%w at epoch %d, batch %d; checkpoint written to %s, %s", ErrInterrupted, ck.Epoch+1, ck.Batch, ckptPath, hint)
			}
			b, err := stream.Next()
			if err != nil {
				continue // the context ended; checkpoint at the top
			}
			if b == nil {
				break
			}
			lr := learningRate(cfg.Train, ck.Step, total)
			loss, err := t.Step(b, lr)
			if err != nil {
				stream.Close()
				last := "the last good checkpoint is " + ckptPath
				if !fileExists(ckptPath) {
					last = "no checkpoint was written yet: change the settings (a smaller train.lr, say) and train it again"
				}
				return dir, fmt.Errorf("step %d (epoch %d, batch %d): %w; stopped, %s",
					ck.Step+1, ck.Epoch+1, ck.Batch+1, err, last)
			}
			ck.Step++
			ck.Batch++
			ck.EpochLoss += loss
			ck.EpochBatches++
			windowImages += b.Size
			epochImages += b.Size
			rate := float64(windowImages) / time.Since(windowStart).Seconds()
			rep.Step(ck.Batch, loss, lr, rate)
			if ck.Step%cfg.Train.LogEvery == 0 {
				if err := emit(metric{Event: "step", Epoch: ck.Epoch + 1, Batch: ck.Batch, Step: ck.Step, Loss: loss, LR: lr, ImagesPerSec: rate, GradNorm: t.Last().GradNorm,
					DeviceMiB: float64(t.dev.MemStats().InUse) / (1 << 20)}); err != nil {
					stream.Close()
					return dir, err
				}
				windowStart, windowImages = time.Now(), 0
			}
			if ck.Step%cfg.Train.CheckpointEvery == 0 && ck.Batch < perEpoch {
				if err := saveCheckpoint(); err != nil {
					stream.Close()
					return dir, err
				}
			}
		}
		stream.Close()
		epochLoss := ck.EpochLoss / float64(max(ck.EpochBatches, 1))
		rate := float64(epochImages) / time.Since(epochStart).Seconds()
		if err := emit(metric{Event: "epoch", Epoch: ck.Epoch + 1, Step: ck.Step, Loss: epochLoss, ImagesPerSec: rate,
			Seconds: time.Since(epochStart).Seconds()}); err != nil {
			return dir, err
		}
		rep.EndEpoch(ck.Epoch+1, epochLoss, rate)
		ck.Epoch++
		ck.Batch, ck.EpochLoss, ck.EpochBatches = 0, 0, 0
		if err := saveCheckpoint(); err != nil {
			return dir, err
		}
	}
	if err := lockLost(ctx, dir); err != nil {
		return dir, err
	}
	weights, err := m.Snapshot(false)
	if err != nil {
		return dir, err
	}
	final := &Trained{Format: checkpointFormat, Method: opt.Method, Seed: opt.Seed, Dataset: cfg.Data.Dataset,
		Classes: t.train.Classes, Model: cfg.Model, Input: m.Input, Head: m.Head, NumClasses: m.Classes,
		Mean: t.mean, Std: t.std, Weights: weights}
	if err := final.save(filepath.Join(dir, ModelFile)); err != nil {
		return dir, err
	}
	rep.Logf("%s: done, %d steps", dir, ck.Step)
	return dir, nil
}

// runFiles are the files of a run directory written atomically.
var runFiles = []string{ConfigFile, CheckpointFile, ModelFile, ProbeFile, OutcomesFile}

// openMetrics opens metrics.jsonl for appending, cut to the given length
// (what the checkpoint covers, so that a resumed run does not repeat
// lines). A symbolic link is refused, and the file is never extended.
func openMetrics(path string, keep int64) (*os.File, error) {
	f, err := regfile.OpenInPlace(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() < keep {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes, but the checkpoint covers %d: the file was cut or replaced; remove the run to train it again", path, st.Size(), keep)
	}
	if err := f.Truncate(keep); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(keep, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// nopReporter reports nothing.
type nopReporter struct{}

func (nopReporter) Logf(string, ...any)                 {}
func (nopReporter) StartEpoch(int, int, int, int)       {}
func (nopReporter) Step(int, float64, float64, float64) {}
func (nopReporter) EndEpoch(int, float64, float64)      {}
