// Package configs holds the experiment configurations (YAML) that ship with
// sincere; its tests load every one of them as `sincere pretrain` and
// `sincere compare` do, and check that the SINCERE authors' recipe is what
// the ResNet-50 files carry.
package configs

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/experiment"
)

// files lists the configuration files here.
func files(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("*.yml")
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, more...)
	if len(paths) < 7 {
		t.Fatalf("found only %v", paths)
	}
	return paths
}

// TestEveryConfigLoads: each file loads with the defaults under it, and
// again for every method it runs (so every overrides.<method> section is
// valid for that method), and names itself as its file does.
func TestEveryConfigLoads(t *testing.T) {
	for _, path := range files(t) {
		t.Run(path, func(t *testing.T) {
			base, err := experiment.Load(path, "", nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(base.Methods) == 0 || len(base.Seeds) == 0 {
				t.Fatalf("%s: methods %v, seeds %v", path, base.Methods, base.Seeds)
			}
			if want := strings.TrimSuffix(strings.TrimSuffix(path, ".yaml"), ".yml"); base.Name != want {
				t.Errorf("%s: name %q, want the file's name %q", path, base.Name, want)
			}
			for _, m := range base.Methods {
				c, err := experiment.Load(path, m, nil)
				if err != nil {
					t.Errorf("%s, method %s: %v", path, m, err)
					continue
				}
				if c.Data.Dataset != base.Data.Dataset || c.Model != base.Model {
					t.Errorf("%s, method %s: the data set or model changed under the method's overrides", path, m)
				}
			}
			for m := range base.Overrides {
				if !slices.Contains(base.Methods, m) {
					t.Errorf("%s: overrides.%s for a method the file does not run (%v)", path, m, base.Methods)
				}
			}
		})
	}
}

// TestEveryConfigDocumented: configs/README.md's table of files names every
// file here, and only those.
func TestEveryConfigDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+\\.ya?ml)` \\|").FindAllStringSubmatch(string(readme), -1) {
		listed[m[1]] = true
	}
	for _, path := range files(t) {
		if !listed[path] {
			t.Errorf("configs/README.md does not describe %s", path)
		}
		delete(listed, path)
	}
	for name := range listed {
		t.Errorf("configs/README.md describes %s, which is not here", name)
	}
}

// recipe is the SINCERE authors' CIFAR training (tufts-ml/SupContrast,
// main_supcon.py and config_supcon/exp-final-cifar10 and -cifar100) for one
// method: its learning rate and temperature.
type recipe struct {
	lr, tau float64
}

// TestResNet50Recipe: the ResNet-50 files carry the authors' recipe exactly,
// as each method resolves it: the network, the data, the optimiser and the
// schedule, and the per-method rates and temperatures of issue 10.
func TestResNet50Recipe(t *testing.T) {
	for _, c := range []struct {
		path, dataset string
		methods       map[string]recipe
	}{
		{"cifar10-resnet50.yaml", "cifar10", map[string]recipe{
			"sincere": {0.65, 0.1}, "supcon": {0.35, 0.05}, "eps-supinfonce": {0.5, 0.1}}},
		{"cifar100-resnet50.yaml", "cifar100", map[string]recipe{
			"sincere": {0.65, 0.05}, "supcon": {0.65, 0.1}, "eps-supinfonce": {0.5, 0.1}}},
	} {
		base, err := experiment.Load(c.path, "", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		var methods []string
		for m := range c.methods {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		got := slices.Sorted(slices.Values(base.Methods))
		if !slices.Equal(got, methods) {
			t.Errorf("%s: methods %v, want %v", c.path, base.Methods, methods)
		}
		if !slices.Equal(base.Seeds, []uint64{1, 2, 3}) {
			t.Errorf("%s: seeds %v, want 3", c.path, base.Seeds)
		}
		for _, m := range methods {
			cfg, err := experiment.Load(c.path, m, nil)
			if err != nil {
				t.Fatalf("%s, %s: %v", c.path, m, err)
			}
			want := c.methods[m]
			d, mo, tr := cfg.Data, cfg.Model, cfg.Train
			for _, f := range []struct {
				what      string
				got, want any
			}{
				{"train.lr", tr.LR, want.lr},
				{"loss.temperature", cfg.Loss.Temperature, want.tau},
				{"loss.epsilon", cfg.Loss.Epsilon, 0.25},
				{"loss.base_temperature (0: tau, as the authors set it)", cfg.Loss.BaseTemperature, 0.0},
				{"data.dataset", d.Dataset, c.dataset},
				// The authors hold a stratified 10% of the 50000 out for
				// validation (--valid_split 0.1).
				{"data.subset", d.Subset, 45000},
				{"data.augment", d.Augment, "cifar"},
				{"data.views", d.Views, 2},
				{"data.sampler", d.Sampler, "balanced"},
				{"model.arch", mo.Arch, "resnet50"},
				{"model.width", mo.Width, 1.0},
				{"model.head_hidden", mo.HeadHidden, 2048},
				{"model.embedding", mo.Embedding, 128},
				{"train.epochs", tr.Epochs, 800},
				{"train.batch_size", tr.BatchSize, 512},
				{"train.momentum", tr.Momentum, 0.9},
				{"train.weight_decay", tr.WeightDecay, 1e-4},
				// Cosine to lr * lr_decay_rate^3 = lr * 1e-3.
				{"train.min_lr_ratio", tr.MinLRRatio, 1e-3},
				// Warm-up over the first 10 epochs (warm_epochs).
				{"train.warmup_steps", tr.WarmupSteps, 10 * (d.Subset / tr.BatchSize)},
			} {
				if f.got != f.want {
					t.Errorf("%s, %s: %s = %v, want %v", c.path, m, f.what, f.got, f.want)
				}
			}
		}
	}
}
