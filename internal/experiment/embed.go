package experiment

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
)

// Splits of a data set Embed takes.
const (
	SplitTrain = "train"
	SplitTest  = "test"
)

// EmbedOptions says what Embed computes.
type EmbedOptions struct {
	// Dataset is the data set to embed; "" means the run's own (with its
	// class filter; other sets are taken whole).
	Dataset string
	// Split is SplitTrain or SplitTest.
	Split string
	// Features asks for the encoder's features instead of the embeddings.
	Features bool
	// Limit keeps the split's first Limit images; 0 keeps all.
	Limit int
	// Fetch, if not nil, downloads a data set found nowhere.
	Fetch *dataset.Fetcher
}

// Embedded is what Embed computed: one row per image, in the split's order.
type Embedded struct {
	// Values holds Rows x Cols values: the L2-normalised projection output
	// (the normalised features for a ce run), or the encoder features.
	Values     []float32
	Rows, Cols int
	Labels     []int
	// Inputs holds the images as the encoder took them: Rows x (C*H*W),
	// each channel-major (C, H, W, as PyTorch lays out NCHW), scaled to
	// [0, 1] and normalised with the run's training mean and std.
	Inputs  []float32
	Trained *Trained
	Model   *encoder.Model
}

// LoadModel reads a finished run's model file and builds its network with
// the trained weights on the CPU (a host-side tool: embeddings and exports
// are for the host).
func LoadModel(dir string) (*Trained, *encoder.Model, error) {
	if err := checkFinished(dir); err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, ModelFile)
	tr, err := LoadTrained(path)
	if err != nil {
		return nil, nil, err
	}
	dev, err := OpenDevice(TrainConfig{Device: kernels.DeviceCPU, Precision: kernels.PrecisionAuto})
	if err != nil {
		return nil, nil, err
	}
	m, err := encoder.New(dev, tr.Model, tr.Input, tr.Head, tr.NumClasses, tr.Seed)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.Restore(tr.Weights); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return tr, m, nil
}

// Embed runs a finished run's encoder over a split of a data set, without
// augmentation, normalised as in training.
func Embed(ctx context.Context, dir string, o EmbedOptions) (*Embedded, error) {
	if o.Split != SplitTrain && o.Split != SplitTest {
		return nil, fmt.Errorf("--split: want %s or %s, got %q", SplitTrain, SplitTest, o.Split)
	}
	if o.Limit < 0 {
		return nil, fmt.Errorf("--limit: must be >= 0, got %d", o.Limit)
	}
	tr, m, err := LoadModel(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := Load(filepath.Join(dir, ConfigFile), "", nil)
	if err != nil {
		return nil, err
	}
	if err := tr.checkRun(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ModelFile), err)
	}
	name := o.Dataset
	var classes []int
	if name == "" || name == cfg.Data.Dataset {
		name, classes = cfg.Data.Dataset, cfg.Data.Classes
	}
	if err := checkDatasetName(name); err != nil {
		return nil, err
	}
	train, test, err := cfg.Data.open(ctx, name, o.Fetch)
	if err != nil {
		return nil, err
	}
	d := train
	if o.Split == SplitTest {
		if d = test; d == nil {
			return nil, fmt.Errorf("%s has no test split", name)
		}
	}
	if d, err = shapeSplit(d, DataConfig{Classes: classes}); err != nil {
		return nil, err
	}
	if d.C != tr.Input[0] || d.H != tr.Input[1] || d.W != tr.Input[2] {
		return nil, fmt.Errorf("%s: images of %dx%dx%d, the encoder takes %dx%dx%d", name, d.C, d.H, d.W, tr.Input[0], tr.Input[1], tr.Input[2])
	}
	if o.Limit > 0 && o.Limit < d.Len() {
		n := o.Limit
		d = &dataset.Dataset{Name: d.Name, Pixels: d.Pixels[:n*d.ImageSize()], Labels: d.Labels[:n], Classes: d.Classes, C: d.C, H: d.H, W: d.W}
	}
	f, e, err := extract(m, tr, d)
	if err != nil {
		return nil, err
	}
	out := &Embedded{Rows: d.Len(), Labels: labelsOf(d), Trained: tr, Model: m}
	out.Values, out.Cols = e.v, e.d
	if o.Features {
		out.Values, out.Cols = f.v, f.d
	}
	if out.Inputs, err = inputsNCHW(tr, d); err != nil {
		return nil, err
	}
	return out, nil
}

// inputsNCHW returns a split's images as extract feeds them to the encoder,
// each reordered from channels-last to channel-major.
func inputsNCHW(tr *Trained, d *dataset.Dataset) ([]float32, error) {
	l, err := evalLoader(tr, d)
	if err != nil {
		return nil, err
	}
	s := l.Stream(context.Background(), 0, 0)
	defer s.Close()
	c, h, w := d.C, d.H, d.W
	out := make([]float32, 0, d.Len()*d.ImageSize())
	for {
		b, err := s.Next()
		if err != nil {
			return nil, err
		}
		if b == nil {
			return out, nil
		}
		for i := range b.Rows() {
			img := b.Images[i*c*h*w : (i+1)*c*h*w]
			for ch := range c {
				for p := range h * w {
					out = append(out, img[p*c+ch])
				}
			}
		}
	}
}
