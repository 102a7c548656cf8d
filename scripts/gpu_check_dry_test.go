package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGPUCheckDryRun runs scripts/gpu-check.sh dry: the GPU check's every
// stage on binaries built -tags gpuemu (the CUDA kernels on the CPU
// emulator) at tiny sizes, the packing of the carried folder included. It
// checks that each stage ran (or was skipped for want of a GPU, with its
// reason), that the final table holds no failure, and that the results
// were written.
func TestGPUCheckDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and trains on the CUDA emulator (about a minute and a half)")
	}
	for _, tool := range []string{"bash", "g++", "xz", "make", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("SINCERE_REQUIRE_GPU_TOOLS") != "" {
				t.Fatalf("SINCERE_REQUIRE_GPU_TOOLS is set and %s is missing", tool)
			}
			t.Skipf("no %s here", tool)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cmd := exec.Command("bash", "gpu-check.sh", "dry", out)
	cmd.Env = append(os.Environ(), "SINCERE_GPU_CHECK_CARRY="+filepath.Join(dir, "carry"), "SINCERE_GPU_CHECK_WORK="+filepath.Join(dir, "work"))
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gpu-check.sh dry: %v\n%s", err, log)
	}
	stages, err := os.ReadFile(filepath.Join(out, "stages.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	verdict := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(stages)), "\n") {
		f := strings.Split(line, "\t")
		verdict[f[0]] = f[1]
	}
	torch := "skipped"
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import torch").Run() == nil {
			torch = "pass"
		}
	}
	for stage, want := range map[string]string{
		"unpack": "pass", "data": "pass", "jit": "skipped", "loss": "pass", "conform": "pass", "parity": "pass",
		"train-cnn-4": "pass", "torch-eager": torch, "compare": "pass",
		"lossbench-tf32x3": "pass", "lossbench-tf32": "pass", "lossbench-fp32": "pass",
		"torchloss": "skipped", "crosscheck": "skipped",
		"sanitizer-step": "pass", "sanitizer-memcheck": "skipped", "sanitizer-racecheck": "skipped",
	} {
		if verdict[stage] != want {
			t.Errorf("stage %s: %q, want %s", stage, verdict[stage], want)
		}
	}
	if t.Failed() {
		t.Logf("%s", log)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := verdicts(t, string(report))
	for check, want := range map[string]string{
		"device conformance suite, TF32 and FP32":       "PASS",
		"gradients cnn fp32":                            "PASS",
		"gradients cnn tf32":                            "PASS",
		"step cnn 1x8x8 4x2":                            "info",
		"quick: training of one run":                    "PASS",
		"device memory after the first logged step":     "PASS",
		"quick: the whole compare (MNIST, no transfer)": "PASS",
		"compute-sanitizer memcheck, one cnn step":      "NOT RUN",
	} {
		if got[check] != want {
			t.Errorf("%q: %q, want %s", check, got[check], want)
		}
	}
	if strings.Contains(string(report), "FAIL") {
		t.Errorf("a check failed:\n%s", report)
	}
	if fi, err := os.Stat(filepath.Join(out, "gpu-check-logs.tar.gz")); err != nil || fi.Size() < 1000 {
		t.Errorf("the logs' archive: %v", err)
	}
}
