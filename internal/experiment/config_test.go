package experiment

import (
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
