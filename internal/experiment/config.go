// Package experiment runs sincere's experiments: the configuration, the
// pretraining loop with its run directory, checkpoints and metrics.
package experiment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/evaluate"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/backend"
	"github.com/sincere-ml/sincere/internal/regfile"
	"github.com/sincere-ml/sincere/internal/sizes"
	"github.com/sincere-ml/sincere/internal/slurm"
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
	// Slurm is what `sincere slurm` asks a cluster for; it changes no
	// result.
	Slurm slurm.Resources `yaml:"slurm,omitempty" mapstructure:"slurm"`
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
	// Precision is the GPU's matrix products: tf32 (tensor cores, as
	// PyTorch runs cuDNN convolutions by default), fp32, or auto (tf32
	// where the GPU has tensor cores). The CPU ignores it.
	Precision string `yaml:"precision" mapstructure:"precision"`
	Workers   int    `yaml:"workers" mapstructure:"workers"`
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
	"train.precision":        kernels.PrecisionAuto,
	"train.workers":          0,
	"probe.datasets":         []string{},
	"probe.train_subset":     0,
	"probe.linear_epochs":    30,
	"probe.linear_lr":        0.1,
	"probe.linear_l2":        1e-4,
	"probe.linear_batch":     256,
	"probe.bootstrap":        1000,
	"slurm.partition":        "",
	"slurm.account":          "",
	"slurm.time":             "",
	"slurm.aggregate_time":   "",
	"slurm.cpus_per_task":    0,
	"slurm.mem":              "",
	"slurm.gres":             "",
	"slurm.max_parallel":     0,
	"slurm.extra":            []string{},
	"slurm.setup":            []string{},
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

// maxConfigBytes bounds a configuration file (and a run's config.yaml).
const maxConfigBytes = 1 << 20

// Load reads a configuration: the defaults, then the file (if path is not
// empty), then the method's overrides, then SINCERE_* environment
// variables, then sets ("key=value", values in YAML syntax; a set of an
// overrides.<method>.<key> changes the overrides before they apply).
// Unknown keys, wrong types, values that would have to be coerced (1.5 for
// a whole number, -1 for a seed, true for a number) and values out of range
// are errors that name the key.
func Load(path, method string, sets []string) (Config, error) {
	if method != "" && !slices.Contains(Methods(), method) {
		return Config{}, fmt.Errorf("unknown method %q (want %s)", method, strings.Join(Methods(), ", "))
	}
	v := viper.New()
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	if path != "" {
		b, err := readConfigFile(path)
		if err != nil {
			return Config{}, err
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, oneLine(err))
		}
	}
	early, late, err := parseSets(sets)
	if err != nil {
		return Config{}, err
	}
	if len(early) > 0 {
		o, err := copyMap("overrides", v.Get("overrides"))
		if err != nil {
			return Config{}, err
		}
		for _, s := range early {
			if err := setPath(o, s.path[1:], s.value); err != nil {
				return Config{}, fmt.Errorf("--set %s: %w", s.key, err)
			}
		}
		v.Set("overrides", o)
	}
	if method != "" {
		switch o := v.Get("overrides." + method).(type) {
		case nil:
		case map[string]any:
			if err := v.MergeConfigMap(o); err != nil {
				return Config{}, fmt.Errorf("overrides.%s: %w", method, err)
			}
		default:
			return Config{}, fmt.Errorf("overrides.%s: want a map of keys to values, got %v", method, o)
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for _, s := range late {
		v.Set(s.key, s.value)
	}
	var c Config
	if err := decodeStrict(v.AllSettings(), &c); err != nil {
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

// readConfigFile reads a YAML file of at most maxConfigBytes, a regular
// file only, and refuses keys without a value (YAML null), which viper
// would silently replace by their defaults.
func readConfigFile(path string) ([]byte, error) {
	b, err := regfile.ReadAll(path, "configuration", maxConfigBytes)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, oneLine(err))
	}
	if key := nullKey("", raw); key != "" {
		return nil, fmt.Errorf("%s: %s has no value (remove the key to use its default)", path, key)
	}
	return b, nil
}

// nullKey returns the first key (in sorted order) of a decoded YAML map
// whose value is null, by its dotted path, or "".
func nullKey(prefix string, m map[string]any) string {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch v := m[k].(type) {
		case nil:
			return prefix + k
		case map[string]any:
			if n := nullKey(prefix+k+".", v); n != "" {
				return n
			}
		}
	}
	return ""
}

// keySet is one parsed --set.
type keySet struct {
	key   string
	path  []string
	value any
}

// parseSets parses --set key=value flags: those that change the overrides
// (early) and the others (late). A set needs a known key and a value.
func parseSets(sets []string) (early, late []keySet, err error) {
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, nil, fmt.Errorf("--set %q: want key=value", s)
		}
		if strings.TrimSpace(val) == "" {
			return nil, nil, fmt.Errorf("--set %s: no value (want %s=VALUE)", s, key)
		}
		var parsed any
		if err := yaml.Unmarshal([]byte(val), &parsed); err != nil {
			return nil, nil, fmt.Errorf("--set %s: value %q is not YAML: %w", key, val, oneLine(err))
		}
		if parsed == nil {
			return nil, nil, fmt.Errorf("--set %s: value %q is null (want a value)", key, val)
		}
		ks := keySet{key: key, path: strings.Split(key, "."), value: parsed}
		if ks.path[0] == "overrides" {
			if len(ks.path) > 1 && !slices.Contains(Methods(), ks.path[1]) {
				return nil, nil, fmt.Errorf("--set %s: unknown method %q (want %s)", s, ks.path[1], strings.Join(Methods(), ", "))
			}
			early = append(early, ks)
			continue
		}
		if _, known := defaults[key]; !known {
			return nil, nil, fmt.Errorf("--set %s: unknown key %q (see configs/README.md)", s, key)
		}
		late = append(late, ks)
	}
	return early, late, nil
}

// copyMap deep-copies a decoded YAML map; what names it in errors.
func copyMap(what string, v any) (map[string]any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a map of keys to values, got %v", what, v)
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if sub, ok := x.(map[string]any); ok {
			c, err := copyMap(what+"."+k, sub)
			if err != nil {
				return nil, err
			}
			x = c
		}
		out[k] = x
	}
	return out, nil
}

// setPath sets m[path[0]][path[1]]... = value, making the maps on the way;
// an empty path replaces every entry of m.
func setPath(m map[string]any, path []string, value any) error {
	if len(path) == 0 {
		repl, err := copyMap("overrides", value)
		if err != nil {
			return err
		}
		clear(m)
		maps.Copy(m, repl)
		return nil
	}
	for _, k := range path[:len(path)-1] {
		next, ok := m[k]
		if !ok || next == nil {
			next = map[string]any{}
			m[k] = next
		}
		sub, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s holds %v, not a map of keys", k, next)
		}
		m = sub
	}
	m[path[len(path)-1]] = value
	return nil
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

// decodeStrict decodes settings into out: unknown keys are errors, and a
// value converts only where nothing is lost (see strictHook).
func decodeStrict(settings map[string]any, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.ComposeDecodeHookFunc(listHook, strictHook),
		ErrorUnused: true,
		Result:      out,
	})
	if err != nil {
		return err
	}
	return d.Decode(settings)
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
		return nil, fmt.Errorf("%q is not a list: %w", s, oneLine(err))
	}
	return out, nil
}

// strictHook converts a scalar to a field's type only where nothing is
// lost or guessed: a string (an environment variable) is read as YAML
// first; a number goes into an integer field only when it is whole and in
// range (into a seed only when it is not negative); a boolean goes into a
// boolean field only; a whole number may name something (name: 2024).
func strictHook(from, to reflect.Type, data any) (any, error) {
	if s, ok := data.(string); ok && to.Kind() != reflect.String && to.Kind() != reflect.Slice &&
		to.Kind() != reflect.Map && to.Kind() != reflect.Interface && to.Kind() != reflect.Struct {
		var parsed any
		if err := yaml.Unmarshal([]byte(s), &parsed); err != nil || parsed == nil {
			return nil, fmt.Errorf("%q is not a %s", s, kindName(to))
		}
		data = parsed
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f, ok := wholeNumber(data)
		if !ok {
			return nil, fmt.Errorf("%v is not a whole number", show(data))
		}
		lo, hi := -math.Ldexp(1, to.Bits()-1), math.Ldexp(1, to.Bits()-1)
		if f < lo || f >= hi {
			return nil, fmt.Errorf("%v is out of range", show(data))
		}
		if i, isInt := data.(int); isInt {
			return i, nil // exact, even beyond 2^53
		}
		return int64(f), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, ok := wholeNumber(data)
		if !ok {
			return nil, fmt.Errorf("%v is not a whole number", show(data))
		}
		if f < 0 {
			return nil, fmt.Errorf("%v is negative", show(data))
		}
		switch v := data.(type) {
		case int:
			return uint64(v), nil
		case uint64:
			return v, nil
		}
		if f >= math.Ldexp(1, to.Bits()) {
			return nil, fmt.Errorf("%v is out of range", show(data))
		}
		return uint64(f), nil
	case reflect.Float32, reflect.Float64:
		switch v := data.(type) {
		case int:
			return float64(v), nil
		case uint64:
			return float64(v), nil
		case float64:
			return v, nil
		}
		return nil, fmt.Errorf("%v is not a number", show(data))
	case reflect.Bool:
		if _, ok := data.(bool); !ok {
			return nil, fmt.Errorf("%v is not true or false", show(data))
		}
	case reflect.String:
		switch v := data.(type) {
		case string:
		case int:
			return fmt.Sprint(v), nil
		case uint64:
			return fmt.Sprint(v), nil
		default:
			return nil, fmt.Errorf("%v is not a string", show(data))
		}
	}
	return data, nil
}

// wholeNumber returns a YAML number as a float64 when it is whole.
func wholeNumber(data any) (float64, bool) {
	switch v := data.(type) {
	case int:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, v == math.Trunc(v) && !math.IsInf(v, 0)
	}
	return 0, false
}

// show formats a value for an error message; a large whole float shows all
// its digits.
func show(data any) string {
	switch v := data.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return strconv.Quote(v)
	case nil:
		return "null"
	}
	return fmt.Sprint(data)
}

// kindName names a type for messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return "whole number"
}

// invalidKeys matches mapstructure's report of unknown keys.
var invalidKeys = regexp.MustCompile(`'([^']*)' has invalid keys: ([^;]*)`)

// quotedKey matches mapstructure's "'key' problem" lines.
var quotedKey = regexp.MustCompile(`^'([^']+)' (.*)$`)

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
		} else if m := quotedKey.FindStringSubmatch(line); m != nil {
			line = m[1] + ": " + m[2]
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
	if err := checkOverrides(c.Overrides); err != nil {
		return err
	}
	if err := CheckPlainName(c.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if len(c.Methods) == 0 {
		return errors.New("methods: list at least one method")
	}
	for i, m := range c.Methods {
		if !slices.Contains(Methods(), m) {
			return fmt.Errorf("methods: unknown method %q (want %s)", m, strings.Join(Methods(), ", "))
		}
		if slices.Contains(c.Methods[:i], m) {
			return fmt.Errorf("methods: %s is listed twice", m)
		}
	}
	if len(c.Seeds) == 0 {
		return errors.New("seeds: list at least one seed")
	}
	for i, s := range c.Seeds {
		if slices.Contains(c.Seeds[:i], s) {
			return fmt.Errorf("seeds: %d is listed twice (each seed is one run)", s)
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
	case d.Workers < 0 || d.Workers > sizes.MaxWorkers:
		return fmt.Errorf("data.workers: must be 0 (one per core) to %d, got %d", sizes.MaxWorkers, d.Workers)
	case d.ImageSize < 4 || d.ImageSize > 1024:
		return fmt.Errorf("data.image_size: must be 4 to 1024, got %d", d.ImageSize)
	case d.Channels != 1 && d.Channels != 3:
		return fmt.Errorf("data.channels: must be 1 or 3, got %d", d.Channels)
	}
	if err := checkDatasetName(d.Dataset); err != nil {
		return fmt.Errorf("data.dataset: %w", err)
	}
	if len(d.Classes) == 1 {
		return fmt.Errorf("data.classes: one class (%d) cannot be trained on; list at least two", d.Classes[0])
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
	case t.Epochs < 1 || t.Epochs > maxEpochs:
		return fmt.Errorf("train.epochs: must be 1 to %d, got %d", maxEpochs, t.Epochs)
	case t.BatchSize < 2 || t.BatchSize > maxBatch:
		return fmt.Errorf("train.batch_size: must be 2 to %d, got %d", maxBatch, t.BatchSize)
	case !(t.LR > 0) || math.IsInf(t.LR, 0):
		return fmt.Errorf("train.lr: must be > 0, got %v", t.LR)
	case !(t.Momentum >= 0 && t.Momentum < 1):
		return fmt.Errorf("train.momentum: must be in [0, 1), got %v", t.Momentum)
	case !(t.WeightDecay >= 0) || math.IsInf(t.WeightDecay, 0):
		return fmt.Errorf("train.weight_decay: must be >= 0, got %v", t.WeightDecay)
	case t.WarmupSteps < 0 || t.WarmupSteps > maxSteps:
		return fmt.Errorf("train.warmup_steps: must be 0 to %d, got %d", maxSteps, t.WarmupSteps)
	case !(t.MinLRRatio >= 0 && t.MinLRRatio <= 1):
		return fmt.Errorf("train.min_lr_ratio: must be in [0, 1], got %v", t.MinLRRatio)
	case t.LogEvery < 1 || t.LogEvery > maxSteps:
		return fmt.Errorf("train.log_every: must be 1 to %d, got %d", maxSteps, t.LogEvery)
	case t.CheckpointEvery < 1 || t.CheckpointEvery > maxSteps:
		return fmt.Errorf("train.checkpoint_every: must be 1 to %d, got %d", maxSteps, t.CheckpointEvery)
	case t.Device != kernels.DeviceCPU && t.Device != kernels.DeviceCUDA && t.Device != kernels.DeviceAuto:
		return fmt.Errorf("train.device: want cpu, cuda or auto, got %q", t.Device)
	case t.Device == kernels.DeviceCUDA && !backend.CUDASupport:
		return fmt.Errorf("train.device cuda: %w", kernels.ErrNoCUDASupport)
	case t.Precision != kernels.PrecisionAuto && t.Precision != kernels.PrecisionTF32 && t.Precision != kernels.PrecisionFP32:
		return fmt.Errorf("train.precision: want tf32, fp32 or auto, got %q", t.Precision)
	case t.Workers < 0 || t.Workers > sizes.MaxWorkers:
		return fmt.Errorf("train.workers: must be 0 (one per core) to %d, got %d", sizes.MaxWorkers, t.Workers)
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
	if err := c.Slurm.Validate(); err != nil {
		return err
	}
	if err := c.Probe.linear().Validate(); err != nil {
		return err
	}
	return c.checkModelSize()
}

// checkModelSize refuses, before any data is loaded, a model whose
// parameters or largest activation (for a training batch of every view, or
// an evaluation batch of extractBatch images) would exceed the encoder's
// limits on the data set's images.
func (c Config) checkModelSize() error {
	in, ok := c.Data.inputShape()
	if !ok {
		return nil
	}
	if _, err := encoder.ParamCount(c.Model, in, encoder.HeadProjection, 0); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if _, err := encoder.ActivationCount(c.Model, in, max(c.Train.BatchSize*c.Data.Views, extractBatch)); err != nil {
		return fmt.Errorf("train.batch_size: %w", err)
	}
	return nil
}

// inputShape returns the C, H, W of the images the data configuration
// gives, where the name alone says it.
func (d DataConfig) inputShape() ([3]int, bool) {
	if _, ok := strings.CutPrefix(d.Dataset, dataset.FolderPrefix); ok {
		return [3]int{d.Channels, d.ImageSize, d.ImageSize}, true
	}
	if o, ok, err := dataset.ParseSynthetic(d.Dataset); ok {
		return [3]int{o.C, o.H, o.W}, err == nil
	}
	n, err := dataset.Lookup(d.Dataset)
	if err != nil {
		return [3]int{}, false
	}
	return [3]int{n.C, n.H, n.W}, true
}

// Bounds of the training settings: beyond them a count overflows or a run
// could never end.
const (
	maxEpochs = 1_000_000
	maxBatch  = 1 << 20
	maxSteps  = 1 << 40
)

// plainName is a name that can be one path component: letters, digits,
// '-', '_' and '.'.
var plainName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// maxNameLen bounds a name that becomes a folder (with room for
// "-seed<S>" within the usual 255-byte limit of a file name).
const maxNameLen = 200

// CheckPlainName accepts a name that becomes one folder of a path: letters,
// digits, '-', '_' and '.', not "." or "..", at most 200 bytes. Nothing
// else may name a run or a comparison: a separator or ".." would put them
// outside the output folder.
func CheckPlainName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a name", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("%q is longer than %d bytes", name[:20]+"...", maxNameLen)
	case !plainName.MatchString(name):
		return fmt.Errorf("%q is not a plain name (letters, digits, '-', '_' and '.' only; it names a folder)", name)
	}
	return nil
}

// sharedKeys are the keys a method may not override: what names the runs,
// and what every method of a comparison must be trained and evaluated on
// alike for its table to mean anything.
var sharedKeys = []string{"name", "methods", "seeds", "overrides", "probe", "slurm", "data.dataset", "data.classes", "data.image_size", "data.channels"}

// checkOverrides checks every method's overrides before any is used: a
// known method, a map of known keys of the right types, and none of the
// shared keys.
func checkOverrides(o map[string]any) error {
	for _, m := range slices.Sorted(maps.Keys(o)) {
		if !slices.Contains(Methods(), m) {
			return fmt.Errorf("overrides.%s: unknown method (want %s)", m, strings.Join(Methods(), ", "))
		}
		mo, ok := o[m].(map[string]any)
		if !ok {
			return fmt.Errorf("overrides.%s: want a map of keys to values, got %v", m, show(o[m]))
		}
		for _, k := range flatKeys("", mo) {
			for _, sk := range sharedKeys {
				if k == sk || strings.HasPrefix(k, sk+".") {
					return fmt.Errorf("overrides.%s.%s: %s is shared by every method and cannot be overridden for one", m, k, sk)
				}
			}
		}
		var probe Config
		if err := decodeStrict(mo, &probe); err != nil {
			return fmt.Errorf("overrides.%s: %w", m, configError("", err))
		}
	}
	return nil
}

// flatKeys lists the dotted keys of a nested map's leaves, sorted.
func flatKeys(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			out = append(out, flatKeys(prefix+k+".", sub)...)
			continue
		}
		out = append(out, prefix+k)
	}
	slices.Sort(out)
	return out
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
// other methods' overrides, the probe settings, the Slurm resources and
// where it computes (device, precision, workers), none of which is what it
// trains.
func (c Config) runDigest() (string, error) {
	c.Name, c.Methods, c.Seeds, c.Overrides, c.Probe, c.Slurm = "", nil, nil, nil, ProbeConfig{}, slurm.Resources{}
	// Where a run computes is not what it trains: a checkpoint written on
	// a GPU resumes on the CPU and the other way round.
	c.Train.Device, c.Train.Precision, c.Train.Workers, c.Data.Workers = "", "", 0, 0
	b, err := c.YAML()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// readRunConfig reads a run's config.yaml.
func readRunConfig(path string) (Config, error) {
	b, err := regfile.ReadAll(path, "configuration", maxConfigBytes)
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
