package scripts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/encoder"
)

// pythonWithTorch returns a python3 that imports torch and numpy, or "" (the
// test is then skipped, or fails where SINCERE_REQUIRE_TORCH is set, as in
// CI).
func pythonWithTorch(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import torch, numpy").Run() == nil {
			return py
		}
	}
	if os.Getenv("SINCERE_REQUIRE_TORCH") != "" {
		t.Fatal("SINCERE_REQUIRE_TORCH is set and no python3 imports torch and numpy (scripts/install-torch.sh)")
	}
	t.Skip("no python3 with torch and numpy here (Debian: apt-get install python3-torch)")
	return ""
}

// TestTorchReferenceLosses: the PyTorch reference formulas of the GPU check
// reproduce the project's golden losses and gradients, and the multi-view
// training losses agree with them (torch_reference.py selftest, float64 on
// the CPU).
func TestTorchReferenceLosses(t *testing.T) {
	py := pythonWithTorch(t)
	out, err := exec.Command(py, "torch_reference.py", "selftest").CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("selftest: %v", err)
	}
	if !strings.Contains(string(out), "vs 24 golden cases") || strings.Contains(string(out), "MISMATCH") {
		t.Errorf("unexpected report:\n%s", out)
	}
}

// TestTorchReferenceTrain runs the PyTorch training-step benchmark of the
// GPU check on the CPU at a tiny size: every network builds, steps with a
// finite loss, has exactly as many parameters as sincere's network of the
// same configuration, and the compiled cases are run or skipped with a
// reason (torch 1.x has no torch.compile).
func TestTorchReferenceTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three small networks")
	}
	py := pythonWithTorch(t)
	out := filepath.Join(t.TempDir(), "train.json")
	cases := []struct {
		arch  string
		shape [3]int
		spec  string
	}{
		{encoder.ArchCNN, [3]int{1, 8, 8}, "cnn:1x8x8:4"},
		{encoder.ArchResNet18, [3]int{3, 8, 8}, "resnet18:3x8x8:4"},
		{encoder.ArchResNet50, [3]int{3, 8, 8}, "resnet50:3x8x8:4"},
	}
	args := []string{"torch_reference.py", "train", out, "--device", "cpu", "--width", "0.125",
		"--steps", "2", "--warmup", "1", "--mode", "eager", "--mode", "compile", "--deadline", "600"}
	for _, c := range cases {
		args = append(args, "--case", c.spec)
	}
	log, err := exec.Command(py, args...).CombinedOutput()
	t.Logf("%s", log)
	if err != nil {
		t.Fatalf("train: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Device string
		Rows   []struct {
			Arch, Mode, Skipped, Error string
			Input                      []int
			Batch, Params              int
			MS                         float64 `json:"ms"`
			Loss                       float64 `json:"loss_value"`
		}
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Device != "cpu" || len(res.Rows) != 2*len(cases) {
		t.Fatalf("device %q, %d rows, want %d", res.Device, len(res.Rows), 2*len(cases))
	}
	for i, r := range res.Rows {
		c := cases[i%len(cases)]
		if r.Arch != c.arch || r.Batch != 4 || len(r.Input) != 3 || r.Input[0] != c.shape[0] {
			t.Errorf("row %d: %+v, want %s", i, r, c.spec)
			continue
		}
		if r.Mode == "compile" && r.Skipped != "" {
			continue
		}
		if r.Error != "" || r.Skipped != "" || !(r.MS > 0) || !(r.Loss > 0) {
			t.Errorf("row %d (%s %s): %+v", i, r.Arch, r.Mode, r)
			continue
		}
		want, err := encoder.ParamCount(encoder.Config{Arch: c.arch, Width: 0.125, Embedding: 128}, c.shape, encoder.HeadProjection, 0)
		if err != nil {
			t.Fatal(err)
		}
		if int64(r.Params) != want {
			t.Errorf("%s: PyTorch's network has %d parameters, sincere's %d", r.Arch, r.Params, want)
		}
	}
}
