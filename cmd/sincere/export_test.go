package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/npyfile"
	"github.com/sincere-ml/sincere/internal/safetensors"
)

// pythonWithTorch returns a python3 that imports torch and numpy: the one on
// PATH, else Debian's /usr/bin/python3 (where apt-get install python3-torch
// puts torch), else "".
func pythonWithTorch() string {
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import torch, numpy").Run() == nil {
			return p
		}
	}
	return ""
}

// tinyRun pretrains a small network for one epoch on synthetic images with
// the built binary and returns its run directory.
func tinyRun(t *testing.T, bin, method, arch, data string) string {
	t.Helper()
	out := t.TempDir()
	args := []string{"pretrain", "--quiet", "--config", filepath.Join("..", "..", "configs", "quick.yaml"), "--method", method,
		"--out", out, "--device", "cpu", "--set", "data.dataset=" + data, "--set", "data.augment=none", "--set", "data.subset=200",
		"--set", "model.arch=" + arch, "--set", "model.width=0.125", "--set", "model.embedding=16",
		"--set", "train.epochs=1", "--set", "train.batch_size=40", "--set", "train.warmup_steps=2"}
	b, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pretrain %s %s: %v\n%s", method, arch, err, b)
	}
	return strings.TrimSpace(string(b))
}

// TestExportAndEmbed checks the files sincere export and embed write.
func TestExportAndEmbed(t *testing.T) {
	bin := sincereBinary(t)
	dir := tinyRun(t, bin, "sincere", "cnn", "synthetic")
	tmp := t.TempDir()
	st := filepath.Join(tmp, "m.safetensors")
	if code, _, stderr := sincere("export", "--run", dir, "--out", st); code != 0 {
		t.Fatal(stderr)
	}
	ts, meta, err := safetensors.ReadFile(st)
	if err != nil || len(ts) != 22 || meta["arch"] != "cnn" || meta["input"] != "1x28x28" || meta["head_hidden"] != "16" {
		t.Errorf("export: %d arrays, metadata %v, %v", len(ts), meta, err)
	}
	e := filepath.Join(tmp, "e.npy")
	if code, _, stderr := sincere("embed", "--run", dir, "--limit", "30", "--out", e, "--inputs-out", filepath.Join(tmp, "x.npy")); code != 0 {
		t.Fatal(stderr)
	}
	z, n, d, err := npyfile.ReadMatrix(e)
	if err != nil || n != 30 || d != 16 {
		t.Fatalf("embeddings %d x %d: %v", n, d, err)
	}
	var norm float64
	for _, v := range z[:d] {
		norm += float64(v) * float64(v)
	}
	if norm < 0.999 || norm > 1.001 {
		t.Errorf("an embedding has squared norm %v", norm)
	}
	if y, err := npyfile.ReadLabels(filepath.Join(tmp, "e.labels.npy")); err != nil || len(y) != 30 {
		t.Errorf("labels %v: %v", y, err)
	}
	if _, n, d, err := npyfile.ReadMatrix(filepath.Join(tmp, "x.npy")); err != nil || n != 30 || d != 28*28 {
		t.Errorf("inputs %d x %d: %v", n, d, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--run", dir, "--format", "onnx", "--out", st}, "--format"},
		{[]string{"export", "--run", tmp, "--out", st}, "no finished run"},
		{[]string{"embed", "--run", dir, "--split", "val", "--out", e}, "--split"},
		{[]string{"embed", "--run", dir, "--dataset", "synthetic:3x32x32", "--out", e}, "the encoder takes 1x28x28"},
	} {
		if code, _, stderr := sincere(c.args...); code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q", c.args, code, stderr)
		}
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 4 {
		t.Errorf("the failed commands left files: %v", entries)
	}
}

// TestTorchCheck exports small trained networks of every architecture,
// loads them into PyTorch with strict=True and compares the embeddings
// (scripts/torch_check.py), where a python3 with torch is installed.
func TestTorchCheck(t *testing.T) {
	bin := sincereBinary(t)
	py := pythonWithTorch()
	if py == "" && os.Getenv("SINCERE_REQUIRE_TORCH") != "" {
		t.Fatal("SINCERE_REQUIRE_TORCH is set and no python3 imports torch and numpy (scripts/install-torch.sh)")
	}
	if py == "" {
		t.Skip("no python3 with torch and numpy here (Debian: apt-get install python3-torch); the PyTorch check is skipped")
	}
	for _, c := range []struct{ method, arch, data string }{
		{"sincere", "cnn", "synthetic"},
		{"supcon", "mlp", "synthetic:3x32x32"}, // 3 channels: the HWC to CHW reordering
		{"sincere", "resnet18", "synthetic:3x32x32"},
		{"supcon", "resnet50", "synthetic"},
		{"ce", "resnet18", "synthetic"},
	} {
		t.Run(c.method+"-"+c.arch, func(t *testing.T) {
			dir := tinyRun(t, bin, c.method, c.arch, c.data)
			out, err := exec.Command(py, filepath.Join("..", "..", "scripts", "torch_check.py"), "--run", dir, "--sincere", bin, "--n", "48").CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatalf("torch_check: %v", err)
			}
			if !strings.Contains(string(out), "All keys matched successfully") || strings.Count(string(out), " ok\n") != 2 {
				t.Errorf("unexpected report:\n%s", out)
			}
		})
	}
}
