package experiment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "exp.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadLayers(t *testing.T) {
	p := writeConfig(t, `
methods: [supcon, sincere]
seeds: [3, 4]
data: {dataset: fashion-mnist, subset: 1000}
train: {lr: 0.2, epochs: 2}
overrides:
  sincere:
    train: {lr: 0.65}
    loss: {temperature: 0.05}
`)
	c, err := Load(p, "supcon", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "exp" || c.Train.LR != 0.2 || c.Train.Epochs != 2 || c.Data.Subset != 1000 || c.Seeds[1] != 4 || c.Train.BatchSize != 128 {
		t.Fatalf("supcon: %+v", c)
	}
	c, err = Load(p, "sincere", nil)
	if err != nil || c.Train.LR != 0.65 || c.Loss.Temperature != 0.05 || c.Train.Epochs != 2 {
		t.Fatalf("sincere override: %+v %v", c.Train, err)
	}
	// No method named: the first (supcon here, without overrides), and a
	// first method with overrides gets them.
	if c, m, err := LoadMethod(p, "", nil); err != nil || m != "supcon" || c.Train.LR != 0.2 {
		t.Fatalf("default method: %s, lr %v, %v", m, c.Train.LR, err)
	}
	if c, m, err := LoadMethod(p, "", []string{"methods=[sincere, supcon]"}); err != nil || m != "sincere" || c.Train.LR != 0.65 {
		t.Fatalf("default method with overrides: %s, lr %v, %v", m, c.Train.LR, err)
	}
	t.Setenv("SINCERE_TRAIN_EPOCHS", "7")
	t.Setenv("SINCERE_DATA_CLASSES", "1,3")
	c, err = Load(p, "sincere", []string{"train.lr=0.01", "model.width=0.5", "data.classes=[2, 5]"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.Epochs != 7 || c.Train.LR != 0.01 || c.Model.Width != 0.5 || len(c.Data.Classes) != 2 || c.Data.Classes[1] != 5 {
		t.Fatalf("env and --set: %+v %+v %+v", c.Train, c.Model, c.Data)
	}
	if _, err := Load("", "", nil); err != nil {
		t.Fatalf("defaults alone: %v", err)
	}
	y, err := c.YAML()
	if err != nil || !strings.Contains(string(y), "lr: 0.01") || !strings.Contains(string(y), "weight_decay: 0.0001") {
		t.Fatalf("resolved YAML:\n%s %v", y, err)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	cases := []struct{ body, want string }{
		{"train: {lrr: 0.1}", "train.lrr"},
		{"trian: {lr: 0.1}", "unknown key trian ("},
		{"train: {epochs: many}", "train.epochs"},
		{"train: {epochs: 0}", "train.epochs"},
		{"train: {lr: -1}", "train.lr"},
		{"train: {momentum: 1.5}", "train.momentum"},
		{"loss: {temperature: 0}", "loss.temperature"},
		{"model: {arch: vgg}", "model.arch"},
		{"model: {width: 0}", "model.width"},
		{"data: {augment: fancy}", "data.augment"},
		{"data: {dataset: imagenet}", "data.dataset"},
		{"data: {views: 0}", "data.views"},
		{"methods: [simclr]", "methods"},
		{"overrides: {simclr: {train: {lr: 1}}}", "overrides.simclr"},
		{"overrides: {sincere: {train: {lrr: 1}}}", "train.lrr"},
		{"train: [1, 2", "yaml"},
	}
	for _, c := range cases {
		_, err := Load(writeConfig(t, c.body), "sincere", nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v should be one line naming %q", c.body, err, c.want)
		}
	}
	for _, set := range [][]string{{"train.lrr=1"}, {"novalue"}, {"train.lr=[unclosed"}} {
		if _, err := Load("", "", set); err == nil {
			t.Errorf("--set %v accepted", set)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), "", nil); err == nil {
		t.Error("missing file accepted")
	}
}

// TestNamesArePlain: whatever sets the name (the file, a method's
// overrides, --set, SINCERE_NAME) or the method, it must be one plain path
// component, or runs and comparisons would be written outside --out.
func TestNamesArePlain(t *testing.T) {
	for _, bad := range []string{"../../../victim", "a/b", "..", ".", "/abs", `a\b`, "sp ace", strings.Repeat("x", 201)} {
		if _, err := Load(writeConfig(t, "name: '"+bad+"'"), "", nil); err == nil || !strings.Contains(err.Error(), "name:") {
			t.Errorf("name %q in the file: %v", bad, err)
		}
		if _, err := Load("", "", []string{"name=" + bad}); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("--set name=%q: %v", bad, err)
		}
	}
	if _, err := Load(writeConfig(t, "overrides: {sincere: {name: '../x'}}"), "sincere", nil); err == nil || !strings.Contains(err.Error(), "overrides.sincere.name") {
		t.Errorf("name through overrides: %v", err)
	}
	// The file's own name, when it names the runs, must be plain too.
	p := filepath.Join(t.TempDir(), "my exp.yaml")
	if err := os.WriteFile(p, []byte("seeds: [1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, "", nil); err == nil || !strings.Contains(err.Error(), "name:") {
		t.Errorf("file name with a space: %v", err)
	}
	t.Setenv("SINCERE_NAME", "../../escape")
	if _, err := Load("", "", nil); err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("SINCERE_NAME=../../escape: %v", err)
	}
	t.Setenv("SINCERE_NAME", "ok-name_1.2")
	if c, err := Load("", "", nil); err != nil || c.Name != "ok-name_1.2" {
		t.Errorf("a plain name: %q %v", c.Name, err)
	}
	if _, err := Load("", "../sincere", nil); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Errorf("method ../sincere: %v", err)
	}
}

// TestLoadRefusesCoercion: a value is never silently converted, wrapped,
// truncated or dropped; the error names the key and the value.
func TestLoadRefusesCoercion(t *testing.T) {
	cases := []struct {
		body string
		set  string
		env  [2]string
		want []string
	}{
		{body: "seeds: [-1]", want: []string{"seeds", "-1", "negative"}},
		{body: "seeds: [1.5]", want: []string{"seeds", "1.5", "whole"}},
		{body: "seeds: [1, 1]", want: []string{"seeds", "twice"}},
		{body: "methods: [sincere, sincere]", want: []string{"methods", "twice"}},
		{body: "train: {epochs: 1.5}", want: []string{"train.epochs", "1.5"}},
		{set: "train.epochs=1.5", want: []string{"train.epochs", "1.5"}},
		{body: "train: {batch_size: 99999999999999999999}", want: []string{"train.batch_size", "out of range"}},
		{set: "train.batch_size=true", want: []string{"train.batch_size", "true"}},
		{body: "train: {lr: true}", want: []string{"train.lr", "true"}},
		{body: "model: {arch: 5}", want: []string{"model.arch", "5"}},
		{set: "train.lr=", want: []string{"train.lr", "no value"}},
		{set: "train.lr=~", want: []string{"train.lr", "null"}},
		{body: "train: {lr: }", want: []string{"train.lr", "no value"}},
		{body: "overrides: {sincere: 5}", want: []string{"overrides.sincere", "5"}},
		{body: "data: {dataset: 'synthetic:1x4x4junk'}", want: []string{"data.dataset", "1x4x4junk"}},
		{body: "data: {dataset: 'synthetic:1x4294967296x4294967296'}", want: []string{"data.dataset"}},
		{body: "seeds: 5", want: []string{"seeds"}},
		{env: [2]string{"SINCERE_TRAIN_EPOCHS", "2.5"}, want: []string{"train.epochs", "2.5"}},
		{env: [2]string{"SINCERE_TRAIN_LR", "fast"}, want: []string{"train.lr", "fast"}},
		{body: "model: {embedding: 70000}", want: []string{"model.embedding", "1 to 65536", "70000"}},
	}
	for _, c := range cases {
		t.Run(c.body+c.set+c.env[0], func(t *testing.T) {
			path := ""
			if c.body != "" {
				path = writeConfig(t, c.body)
			}
			var sets []string
			if c.set != "" {
				sets = []string{c.set}
			}
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			cfg, err := Load(path, "sincere", sets)
			if err == nil {
				t.Fatalf("accepted: %+v %+v seeds %v", cfg.Train, cfg.Data, cfg.Seeds)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q should be one line naming %q", err, w)
				}
			}
		})
	}
	// What is exact still converts: whole floats, strings from the
	// environment, big seeds.
	t.Setenv("SINCERE_TRAIN_LR", "0.05")
	c, err := Load(writeConfig(t, "train: {epochs: 2.0}\nseeds: [18446744073709551615, 0]"), "", nil)
	if err != nil || c.Train.Epochs != 2 || c.Train.LR != 0.05 || c.Seeds[0] != 18446744073709551615 {
		t.Fatalf("exact values: %+v %v %v", c.Train, c.Seeds, err)
	}
}

// TestSetOverrides: --set can change a method's overrides, which then apply
// (later layers still win), and an override is checked like a key of its
// own.
func TestSetOverrides(t *testing.T) {
	p := writeConfig(t, "methods: [supcon, sincere]\noverrides: {sincere: {loss: {temperature: 0.05}}}")
	c, err := Load(p, "sincere", []string{"overrides.sincere.train.lr=0.2"})
	if err != nil || c.Train.LR != 0.2 || c.Loss.Temperature != 0.05 {
		t.Fatalf("--set overrides.sincere.train.lr=0.2: lr %v, temperature %v, %v", c.Train.LR, c.Loss.Temperature, err)
	}
	if ov := c.Overrides["sincere"].(map[string]any)["train"].(map[string]any)["lr"]; ov != 0.2 {
		t.Fatalf("config.yaml would record the override as %v", ov)
	}
	if c, err := Load(p, "supcon", []string{"overrides.sincere.train.lr=0.2"}); err != nil || c.Train.LR != 0.1 {
		t.Fatalf("another method's override applied: lr %v %v", c.Train.LR, err)
	}
	if c, err := Load(p, "sincere", []string{"overrides.sincere.train.lr=0.2", "train.lr=0.3"}); err != nil || c.Train.LR != 0.3 {
		t.Fatalf("--set train.lr should win over the override: %v %v", c.Train.LR, err)
	}
	if c, err := Load(p, "sincere", []string{"overrides={sincere: {train: {epochs: 9}}}"}); err != nil || c.Train.Epochs != 9 || c.Loss.Temperature != 0.1 {
		t.Fatalf("--set overrides={...} replaces them: %+v %+v %v", c.Train, c.Loss, err)
	}
	for _, set := range []string{"overrides.sincere.train.nokey=1", "overrides.sincere.train.lr=fast", "overrides.simclr.train.lr=1",
		"overrides.sincere.train=5", "overrides.sincere.data.dataset=cifar10"} {
		// Checked whichever method is loaded.
		if _, err := Load(p, "supcon", []string{set}); err == nil {
			t.Errorf("--set %s accepted", set)
		}
	}
}

// TestSharedKeysAreNotOverridden: what a comparison's methods must share
// (the data, the probe, the names) cannot be overridden for one method, so a
// comparison fails before it trains anything rather than at the table.
func TestSharedKeysAreNotOverridden(t *testing.T) {
	for _, body := range []string{
		"overrides: {supcon: {data: {dataset: fashion-mnist}}}",
		"overrides: {supcon: {data: {classes: [0, 1]}}}",
		"overrides: {supcon: {probe: {bootstrap: 10}}}",
		"overrides: {supcon: {seeds: [2]}}",
		"overrides: {supcon: {methods: [ce]}}",
		"overrides: {supcon: {name: other}}",
		"overrides: {supcon: {slurm: {time: '1:00:00'}}}",
	} {
		_, err := Load(writeConfig(t, "methods: [sincere, supcon]\n"+body), "sincere", nil)
		if err == nil || !strings.Contains(err.Error(), "overrides.supcon.") || !strings.Contains(err.Error(), "shared") {
			t.Errorf("%s: %v", body, err)
		}
	}
	out := t.TempDir()
	p := writeConfig(t, "methods: [sincere, supcon]\ndata: {dataset: synthetic}\noverrides: {supcon: {data: {dataset: 'synthetic:1x8x8'}}}")
	if _, err := Compare(context.Background(), p, CompareOptions{Out: out}); err == nil {
		t.Fatal("a comparison with a per-method data set ran")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("the failed comparison wrote %d entries into --out", len(entries))
	}
}

// TestSizeSettingsAreBounded: counts that size allocations or goroutines
// are bounded with overflow-safe arithmetic, and the error says the bound.
func TestSizeSettingsAreBounded(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"data.workers=1000000", "data.workers: must be 0 (one per core) to 256"},
		{"train.workers=100000000", "train.workers: must be 0 (one per core) to 256"},
		{"train.epochs=1000000000000", "train.epochs: must be 1 to"},
		{"train.batch_size=4000000000", "train.batch_size: must be 2 to"},
		{"data.dataset=synthetic:1x4294967296x4294967296", "4096"},
		{"data.dataset=synthetic:64x4096x4096", "limit"},
		{"model.head_hidden=1000000", "model.head_hidden: must be 0 (the feature width) to 65536"},
		{"model.arch=resnet18 model.width=16", "parameters a model may have"},
		{"data.dataset=folder:/x data.image_size=1024 train.batch_size=1024", "train.batch_size: a batch of 2048 images of 3x1024x1024"},
	} {
		if _, err := Load("", "", strings.Fields(c.set)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %s: error %v should say %q", c.set, err, c.want)
		}
	}
}

// TestEveryKeyDocumented: configs/README.md has a row for every key.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "configs", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if k == "overrides" {
			k = "overrides.<method>.<key>"
		}
		if !strings.Contains(string(doc), "| `"+k+"` |") {
			t.Errorf("configs/README.md does not document %s", k)
		}
	}
}
