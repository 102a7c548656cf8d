// Package experiment runs sincere's experiments: the configuration, the
// pretraining loop with its run directory, checkpoints and metrics.
package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/evaluate"
	"github.com/sincere-ml/sincere/internal/kernels"
)

// Methods: the three contrastive losses and the cross-entropy baseline.
const MethodCE = "ce"

// Methods lists the method names.
func Methods() []string { return append(kernels.LossNames(), MethodCE) }

// Config is an experiment: what to train on, the network, the loss, the
// optimiser, and the methods and seeds a comparison runs. Every key is
// documented in configs/README.md.
type Config struct {
	// Name names the run directory's parent; empty means the config file's
	// base name.
	Name string `yaml:"name" mapstructure:"name"`
	// Methods and Seeds are what `sincere compare` runs; `sincere pretrain`
	// defaults to the first of each.
	Methods []string `yaml:"methods" mapstructure:"methods"`
	Seeds   []uint64 `yaml:"seeds" mapstructure:"seeds"`
	// Overrides holds per-method settings, merged over the file's:
	// overrides.sincere.train.lr = 0.65, say.
	Overrides map[string]any `yaml:"overrides,omitempty" mapstructure:"overrides"`
	Data      DataConfig     `yaml:"data" mapstructure:"data"`
	Model     encoder.Config `yaml:"model" mapstructure:"model"`
	Loss      LossConfig     `yaml:"loss" mapstructure:"loss"`
	Train     TrainConfig    `yaml:"train" mapstructure:"train"`
	Probe     ProbeConfig    `yaml:"probe" mapstructure:"probe"`
}

// ProbeConfig says how runs are evaluated.
type ProbeConfig struct {
	// Datasets are transfer sets, each probed on its own train split; the
	// run's own test split is always evaluated.
	Datasets []string `yaml:"datasets" mapstructure:"datasets" json:"datasets"`
	// TrainSubset cuts each probe's training split to a class-stratified
	// subset (0: all); for the run's own data set it is the same subset as
	// data.subset when the two are equal.
	TrainSubset  int     `yaml:"train_subset" mapstructure:"train_subset" json:"train_subset"`
	LinearEpochs int     `yaml:"linear_epochs" mapstructure:"linear_epochs" json:"linear_epochs"`
	LinearLR     float64 `yaml:"linear_lr" mapstructure:"linear_lr" json:"linear_lr"`
	LinearL2     float64 `yaml:"linear_l2" mapstructure:"linear_l2" json:"linear_l2"`
	LinearBatch  int     `yaml:"linear_batch" mapstructure:"linear_batch" json:"linear_batch"`
	Bootstrap    int     `yaml:"bootstrap" mapstructure:"bootstrap" json:"bootstrap"`
}

// DataConfig selects the training data and how batches are made.
type DataConfig struct {
	Dataset   string `yaml:"dataset" mapstructure:"dataset"`
	Root      string `yaml:"root" mapstructure:"root"`
	Subset    int    `yaml:"subset" mapstructure:"subset"`
	Classes   []int  `yaml:"classes" mapstructure:"classes"`
	Augment   string `yaml:"augment" mapstructure:"augment"`
	Views     int    `yaml:"views" mapstructure:"views"`
	Sampler   string `yaml:"sampler" mapstructure:"sampler"`
	Workers   int    `yaml:"workers" mapstructure:"workers"`
	ImageSize int    `yaml:"image_size" mapstructure:"image_size"`
	Channels  int    `yaml:"channels" mapstructure:"channels"`
}

// LossConfig holds the contrastive losses' parameters.
type LossConfig struct {
	Temperature     float64 `yaml:"temperature" mapstructure:"temperature"`
	Epsilon         float64 `yaml:"epsilon" mapstructure:"epsilon"`
	BaseTemperature float64 `yaml:"base_temperature" mapstructure:"base_temperature"`
}

// TrainConfig holds the optimiser, the schedule and the bookkeeping.
type TrainConfig struct {
	Epochs          int     `yaml:"epochs" mapstructure:"epochs"`
	BatchSize       int     `yaml:"batch_size" mapstructure:"batch_size"`
	LR              float64 `yaml:"lr" mapstructure:"lr"`
	Momentum        float64 `yaml:"momentum" mapstructure:"momentum"`
	WeightDecay     float64 `yaml:"weight_decay" mapstructure:"weight_decay"`
	WarmupSteps     int     `yaml:"warmup_steps" mapstructure:"warmup_steps"`
	MinLRRatio      float64 `yaml:"min_lr_ratio" mapstructure:"min_lr_ratio"`
	LogEvery        int     `yaml:"log_every" mapstructure:"log_every"`
	CheckpointEvery int     `yaml:"checkpoint_every" mapstructure:"checkpoint_every"`
	Device          string  `yaml:"device" mapstructure:"device"`
	Workers         int     `yaml:"workers" mapstructure:"workers"`
}

// defaults are the values of every key a file leaves out: the SupCon and
// SINCERE authors' optimiser, and a small CNN on MNIST.
var defaults = map[string]any{
	"name":                   "",
	"methods":                []string{"sincere"},
	"seeds":                  []uint64{1},
	"overrides":              map[string]any{},
	"data.dataset":           "mnist",
	"data.root":              "",
	"data.subset":            0,
	"data.classes":           []int{},
	"data.augment":           dataset.AugmentDigits,
	"data.views":             2,
	"data.sampler":           dataset.SamplerBalanced,
	"data.workers":           0,
	"data.image_size":        32,
	"data.channels":          3,
	"model.arch":             encoder.ArchCNN,
	"model.width":            1.0,
	"model.head_hidden":      0,
	"model.embedding":        128,
	"loss.temperature":       0.1,
	"loss.epsilon":           0.25,
	"loss.base_temperature":  0.0,
	"train.epochs":           3,
	"train.batch_size":       128,
	"train.lr":               0.1,
	"train.momentum":         0.9,
	"train.weight_decay":     1e-4,
	"train.warmup_steps":     50,
	"train.min_lr_ratio":     1e-3,
	"train.log_every":        20,
	"train.checkpoint_every": 100,
	"train.device":           kernels.DeviceAuto,
	"train.workers":          0,
	"probe.datasets":         []string{},
	"probe.train_subset":     0,
	"probe.linear_epochs":    30,
	"probe.linear_lr":        0.1,
	"probe.linear_l2":        1e-4,
	"probe.linear_batch":     256,
	"probe.bootstrap":        1000,
}

// Keys lists every configuration key.
func Keys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// EnvPrefix is the prefix of the environment variables that set keys:
// SINCERE_TRAIN_LR sets train.lr.
const EnvPrefix = "SINCERE"

// Load reads a configuration: the defaults, then the file (if path is not
// empty), then the method's overrides, then SINCERE_* environment
// variables, then sets ("key=value", values in YAML syntax). Unknown keys,
// wrong types and values out of range are errors that name the key.
func Load(path, method string, sets []string) (Config, error) {
	v := viper.New()
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, oneLine(err))
		}
	}
	if method != "" {
		if o := v.GetStringMap("overrides." + method); len(o) > 0 {
			if err := v.MergeConfigMap(o); err != nil {
				return Config{}, fmt.Errorf("overrides.%s: %w", method, err)
			}
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return Config{}, fmt.Errorf("--set %q: want key=value", s)
		}
		if _, known := defaults[key]; !known && !strings.HasPrefix(key, "overrides.") {
			return Config{}, fmt.Errorf("--set %s: unknown key %q (see configs/README.md)", s, key)
		}
		var parsed any
		if err := yaml.Unmarshal([]byte(val), &parsed); err != nil {
			return Config{}, fmt.Errorf("--set %s: value %q is not YAML: %w", key, val, err)
		}
		v.Set(key, parsed)
	}
	var c Config
	err := v.UnmarshalExact(&c, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = listHook
		dc.WeaklyTypedInput = true
	})
	if err != nil {
		return Config{}, configError(path, err)
	}
	if c.Name == "" && path != "" {
		c.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if c.Name == "" {
		c.Name = "default"
	}
	if err := c.Validate(); err != nil {
		if path != "" {
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
		return Config{}, err
	}
	return c, nil
}

// LoadMethod is Load for a run of one method: an empty method means the
// configuration's first, whose overrides then apply as if it were named. It
// returns the method.
func LoadMethod(path, method string, sets []string) (Config, string, error) {
	if method == "" {
		c, err := Load(path, "", sets)
		if err != nil {
			return Config{}, "", err
		}
		method = c.Methods[0]
	}
	c, err := Load(path, method, sets)
	return c, method, err
}

// listHook lets a list be written as a string, as environment variables
// must: "1,3" or "[1, 3]" (YAML).
func listHook(from, to reflect.Type, data any) (any, error) {
	if to.Kind() != reflect.Slice {
		return data, nil
	}
	var s string
	switch v := data.(type) {
	case string:
		s = v
	case []string:
		if len(v) != 1 {
			return data, nil
		}
		s = v[0]
	default:
		return data, nil
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return []any{}, nil
	}
	if !strings.HasPrefix(s, "[") {
		s = "[" + s + "]"
	}
	var out []any
	if err := yaml.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("%q is not a list: %w", s, err)
	}
	return out, nil
}

// invalidKeys matches mapstructure's report of unknown keys.
var invalidKeys = regexp.MustCompile(`'([^']*)' has invalid keys: ([^;]*)`)

// configError turns a decoding error into one line that names the key.
func configError(path string, err error) error {
	var msgs []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" || strings.HasPrefix(line, "decoding failed") {
			continue
		}
		if m := invalidKeys.FindStringSubmatch(line); m != nil {
			var keys []string
			for _, k := range strings.Split(m[2], ",") {
				k = strings.TrimSpace(k)
				if m[1] != "" && !strings.Contains(m[1], ".Config") { // the root struct is unnamed in keys
					k = m[1] + "." + k
				}
				keys = append(keys, k)
			}
			line = "unknown key " + strings.Join(keys, ", ")
		}
		msgs = append(msgs, line)
	}
	msg := strings.Join(msgs, "; ")
	if path != "" {
		return fmt.Errorf("%s: %s (see configs/README.md)", path, msg)
	}
	return fmt.Errorf("%s (see configs/README.md)", msg)
}

// oneLine folds a multi-line error into one line.
func oneLine(err error) error {
	s := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	return errors.New(s)
}

// Validate reports the first value out of range, naming its key.
func (c Config) Validate() error {
	if len(c.Methods) == 0 {
		return errors.New("methods: list at least one method")
	}
	for _, m := range c.Methods {
		if !slices.Contains(Methods(), m) {
			return fmt.Errorf("methods: unknown method %q (want %s)", m, strings.Join(Methods(), ", "))
		}
	}
	if len(c.Seeds) == 0 {
		return errors.New("seeds: list at least one seed")
	}
	for m := range c.Overrides {
		if !slices.Contains(Methods(), m) {
			return fmt.Errorf("overrides.%s: unknown method", m)
		}
	}
	d := c.Data
	switch {
	case d.Dataset == "":
		return errors.New("data.dataset: required")
	case d.Subset < 0:
		return fmt.Errorf("data.subset: must be >= 0 (0: the whole training split), got %d", d.Subset)
	case !slices.Contains(dataset.Presets(), d.Augment):
		return fmt.Errorf("data.augment: unknown preset %q (want %s)", d.Augment, strings.Join(dataset.Presets(), ", "))
	case d.Views < 1 || d.Views > 16:
		return fmt.Errorf("data.views: must be 1 to 16, got %d", d.Views)
	case d.Sampler != dataset.SamplerBalanced && d.Sampler != dataset.SamplerShuffled:
		return fmt.Errorf("data.sampler: want %s or %s, got %q", dataset.SamplerBalanced, dataset.SamplerShuffled, d.Sampler)
	case d.Workers < 0:
		return fmt.Errorf("data.workers: must be >= 0 (0: one per core), got %d", d.Workers)
	case d.ImageSize < 4 || d.ImageSize > 1024:
		return fmt.Errorf("data.image_size: must be 4 to 1024, got %d", d.ImageSize)
	case d.Channels != 1 && d.Channels != 3:
		return fmt.Errorf("data.channels: must be 1 or 3, got %d", d.Channels)
	}
	if err := checkDatasetName(d.Dataset); err != nil {
		return fmt.Errorf("data.dataset: %w", err)
	}
	if err := c.Model.Validate(); err != nil {
		return err
	}
	l := c.Loss
	switch {
	case !(l.Temperature > 0) || math.IsInf(l.Temperature, 0):
		return fmt.Errorf("loss.temperature: must be > 0, got %v", l.Temperature)
	case math.IsNaN(l.Epsilon) || math.IsInf(l.Epsilon, 0):
		return fmt.Errorf("loss.epsilon: must be finite, got %v", l.Epsilon)
	case l.BaseTemperature < 0 || math.IsInf(l.BaseTemperature, 0) || math.IsNaN(l.BaseTemperature):
		return fmt.Errorf("loss.base_temperature: must be >= 0 (0: the temperature), got %v", l.BaseTemperature)
	}
	t := c.Train
	switch {
	case t.Epochs < 1:
		return fmt.Errorf("train.epochs: must be at least 1, got %d", t.Epochs)
	case t.BatchSize < 2:
		return fmt.Errorf("train.batch_size: must be at least 2, got %d", t.BatchSize)
	case !(t.LR > 0) || math.IsInf(t.LR, 0):
		return fmt.Errorf("train.lr: must be > 0, got %v", t.LR)
	case !(t.Momentum >= 0 && t.Momentum < 1):
		return fmt.Errorf("train.momentum: must be in [0, 1), got %v", t.Momentum)
	case !(t.WeightDecay >= 0) || math.IsInf(t.WeightDecay, 0):
		return fmt.Errorf("train.weight_decay: must be >= 0, got %v", t.WeightDecay)
	case t.WarmupSteps < 0:
		return fmt.Errorf("train.warmup_steps: must be >= 0, got %d", t.WarmupSteps)
	case !(t.MinLRRatio >= 0 && t.MinLRRatio <= 1):
		return fmt.Errorf("train.min_lr_ratio: must be in [0, 1], got %v", t.MinLRRatio)
	case t.LogEvery < 1:
		return fmt.Errorf("train.log_every: must be at least 1, got %d", t.LogEvery)
	case t.CheckpointEvery < 1:
		return fmt.Errorf("train.checkpoint_every: must be at least 1, got %d", t.CheckpointEvery)
	case t.Device != kernels.DeviceCPU && t.Device != kernels.DeviceCUDA && t.Device != kernels.DeviceAuto:
		return fmt.Errorf("train.device: want cpu, cuda or auto, got %q", t.Device)
	case t.Workers < 0:
		return fmt.Errorf("train.workers: must be >= 0 (0: one per core), got %d", t.Workers)
	}
	p := c.Probe
	for _, name := range p.Datasets {
		if err := checkDatasetName(name); err != nil {
			return fmt.Errorf("probe.datasets: %w", err)
		}
	}
	switch {
	case p.TrainSubset < 0:
		return fmt.Errorf("probe.train_subset: must be >= 0 (0: all), got %d", p.TrainSubset)
	case p.Bootstrap < 0 || p.Bootstrap > 100000:
		return fmt.Errorf("probe.bootstrap: must be 0 to 100000 resamples, got %d", p.Bootstrap)
	}
	return c.Probe.linear().Validate()
}

// linear returns the linear probe's options.
func (p ProbeConfig) linear() evaluate.LinearOptions {
	return evaluate.LinearOptions{Epochs: p.LinearEpochs, Batch: p.LinearBatch, LR: p.LinearLR, L2: p.LinearL2, Seed: 1}
}

// checkDatasetName accepts a registry name, synthetic:CxHxW or folder:PATH.
func checkDatasetName(name string) error {
	if _, ok, err := dataset.ParseSynthetic(name); ok {
		return err
	}
	if strings.HasPrefix(name, dataset.FolderPrefix) {
		return nil
	}
	_, err := dataset.Lookup(name)
	return err
}

// YAML returns the resolved configuration as YAML, the content of a run's
// config.yaml.
func (c Config) YAML() ([]byte, error) { return yaml.Marshal(c) }

// runDigest is the SHA-256 of what a run's training depends on: the
// resolved configuration less its name, its lists of methods and seeds, the
// other methods' overrides and the probe settings, none of which changes a
// trained model.
func (c Config) runDigest() (string, error) {
	c.Name, c.Methods, c.Seeds, c.Overrides, c.Probe = "", nil, nil, nil, ProbeConfig{}
	b, err := c.YAML()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// readRunConfig reads a run's config.yaml.
func readRunConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
