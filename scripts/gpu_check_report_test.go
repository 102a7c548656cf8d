package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeFiles writes name -> content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// verdicts parses the report's last table: check -> verdict.
func verdicts(t *testing.T, report string) map[string]string {
	t.Helper()
	i := strings.LastIndex(report, "\nVerdicts (")
	if i < 0 {
		t.Fatalf("no verdict table:\n%s", report)
	}
	out := map[string]string{}
	row := regexp.MustCompile(`^  \s*(\S.*?)\s{2,}(PASS|FAIL|NOT RUN|info|ERROR)\s{2,}`)
	for _, line := range strings.Split(report[i:], "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			out[strings.TrimSpace(m[1])] = m[2]
		}
	}
	return out
}

// TestGPUCheckReport feeds scripts/gpu_check_report.py the files of a made-up
// GPU check, each figure on one side of its target, and checks every
// verdict and the exit status.
func TestGPUCheckReport(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	work := t.TempDir()
	stages := strings.Join([]string{
		"unpack\tpass\t1\t0\tcommit abc",
		"data\tpass\t0.5\t60\texit 0",
		"jit\tpass\t21.0\t120\texit 0",
		"loss\tpass\t12\t90\texit 0",
		"conform\tfail\t40\t100\texit 1",
		"parity\tpass\t30\t100\texit 0",
		"train-resnet18-512\tpass\t9\t60\texit 0",
		"train-resnet50-512\tpass\t12\t60\texit 0",
		"train-cnn-128\tfail\t1\t60\texit 1",
		"torch-eager\tpass\t30\t90\texit 0",
		"compare\tpass\t130.5\t150\texit 0",
		"lossbench-tf32x3\tpass\t5\t45\texit 0",
		"lossbench-tf32\tpass\t5\t45\texit 0",
		"lossbench-fp32\ttimeout\t45\t45\texit 124",
		"torchloss\tpass\t20\t60\texit 0",
		"crosscheck\tpass\t10\t45\texit 0",
		"torch-compile\tpass\t100\t170\texit 0",
		"sanitizer-memcheck\tpass\t20\t60\texit 0",
		"sanitizer-racecheck\tfail\t20\t60\texit 3",
	}, "\n") + "\n"
	writeFiles(t, work, map[string]string{
		"stages.tsv": stages,
		"unpack.log": "commit abc\ntags gpu\nname, driver_version\nNVIDIA H200, 580.159.03\ntorch 2.11.0 cuda True\n",
		"loss.log":   "=== RUN   TestCUDAMatchesCPU\n--- PASS: TestCUDAMatchesCPU (3.00s)\nPASS\n",
		"conform.log": "--- FAIL: TestDeviceConformance (1.00s)\n    --- FAIL: TestDeviceConformance/tf32 (1.00s)\n" +
			"        --- PASS: TestDeviceConformance/tf32/Gemm (0.1s)\n",
		"parity.log": "=== RUN   TestStepParity\n" +
			"parity cnn fp32 encoder.conv1.w 3.1e-06\nparity cnn fp32 head.fc2.b 2e-05\n" +
			"parity cnn fp32: loss 3.1 vs 3.1 (rel 1e-07), 2 tensors, worst gradient rel L2 2e-05 (head.fc2.b), bound 0.0001\n" +
			"parity resnet18 tf32 encoder.stem.conv.w 0.004\nparity resnet18 tf32 encoder.layer4.1.bn2.gamma 0.021\n" +
			"parity resnet18 tf32: loss 3.2 vs 3.2 (rel 1e-04), 2 tensors, worst gradient rel L2 0.021 (encoder.layer4.1.bn2.gamma), bound 0.01\n" +
			"parity resnet50 fp32 encoder.stem.conv.w NaN\n" +
			"--- PASS: TestStepParity (20.00s)\n",
		"train-resnet18-512.json": `{"device":"NVIDIA H200","arch":"resnet18","input":[3,32,32],"batch":512,"views":2,"step_ms":60,"images_per_sec":8533,"gflops":56000,"peak_gflops":535000,"device_mib":3000}` + "\n",
		"train-resnet50-512.json": `{"device":"NVIDIA H200","arch":"resnet50","input":[3,32,32],"batch":512,"views":2,"step_ms":200,"images_per_sec":2560,"gflops":40000,"peak_gflops":535000,"device_mib":9000}` + "\n",
		"torch-eager.json": `{"rows": [` +
			`{"arch":"resnet18","input":[3,32,32],"batch":512,"mode":"eager","ms":50,"peak_mib":2500,"tflops":70},` +
			`{"arch":"resnet50","input":[3,32,32],"batch":512,"mode":"eager","ms":100,"peak_mib":8000,"tflops":80}]}`,
		"torch-compile.json": `{"rows": [{"arch":"resnet18","input":[3,32,32],"batch":512,"mode":"compile","ms":40,"compile_s":50},` +
			`{"arch":"resnet50","input":[3,32,32],"batch":512,"mode":"compile","skipped":"20 s of the deadline left"}]}`,
		"compare/quick/supcon-seed1/metrics.jsonl": `{"event":"step","step":20,"device_mib":100}` + "\n" +
			`{"event":"step","step":40,"device_mib":100}` + "\n" + `{"event":"epoch","seconds":6}` + "\n" + `{"event":"epoch","seconds":5.5}` + "\n",
		"compare/quick/sincere-seed1/metrics.jsonl": `{"event":"step","step":20,"device_mib":100}` + "\n" +
			`{"event":"step","step":40,"device_mib":100}` + "\n" + `{"event":"step","step":60,"device_mib":104}` + "\n" +
			`{"event":"epoch","seconds":9}` + "\n" + `{"event":"epoch","seconds":9}` + "\n",
		"compare.md": "## quick\n\nprose\n\n| method | mnist knn1 |\n|---|---|\n| supcon | 97.0 [96.8, 97.2] |\n\nmore\n\n| other |\n",
		"lossbench-tf32.json": `{"n":32768,"loss":"sincere","precision":"tf32","median_ms":10,"kernel_ms":9}` + "\n" +
			`{"n":262144,"loss":"sincere","precision":"tf32","median_ms":500,"kernel_ms":490,"device_scratch_mib":2000}` + "\n",
		"torch.json": `{"rows":[{"loss":"sincere","mode":"eager","n":32768,"ms":150}]}`,
		"crosscheck.json": `[{"precision":"tf32","loss_rel":1e-7,"grad_rel":5e-4,"finite":true},` +
			`{"precision":"fp32","loss_rel":1e-7,"grad_rel":2e-4,"finite":true}]`,
		"sanitizer-memcheck.log":  "========= ERROR SUMMARY: 0 errors\n",
		"sanitizer-racecheck.log": "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)\n========= ERROR SUMMARY: 1 error\n",
	})
	cmd := exec.Command("python3", "gpu_check_report.py", work, "--out", filepath.Join(work, "report.txt"), "--budget", "460", "--wall", "450")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v), want 1 (checks failed):\n%s", code, err, out)
	}
	got := verdicts(t, string(out))
	for check, want := range map[string]string{
		"the carried MNIST (sincere data verify)":               "PASS",
		"first GPU training step (the driver compiles the PTX)": "PASS",
		"loss kernels vs CPU engine and float64 (issue 6)":      "PASS",
		"device conformance suite, TF32 and FP32":               "FAIL",
		"whole-step parity vs the CPU device":                   "PASS",
		"gradients cnn fp32":                                    "PASS",
		"gradients resnet18 tf32":                               "FAIL", // 0.021 > 1e-2
		"gradients resnet50 fp32":                               "FAIL", // NaN
		"step resnet18 3x32x32 512x2 vs PyTorch eager":          "PASS", // 1.2x
		"step resnet50 3x32x32 512x2 vs PyTorch eager":          "FAIL", // 2.0x
		"step cnn-128 (sincere-cuda bench train)":               "FAIL",
		"quick: training of one run":                            "FAIL", // 18 s
		"device memory after the first logged step":             "FAIL", // 100 -> 104 MiB
		"quick: the whole compare (MNIST, no transfer)":         "FAIL", // 130.5 s
		"loss: SINCERE N=32768 tf32 vs PyTorch eager":           "PASS", // 15x
		"loss: SINCERE N=262144 tf32 device memory":             "FAIL", // 2000 MiB
		"loss: bench loss --precision fp32":                     "FAIL", // timed out
		"loss: sincere-cuda loss tf32 vs float64":               "PASS",
		"loss: sincere-cuda loss fp32 vs float64":               "FAIL",
		"compute-sanitizer memcheck, one cnn step":              "PASS",
		"compute-sanitizer racecheck, one cnn step":             "FAIL",
	} {
		if got[check] != want {
			t.Errorf("%q: %q, want %s", check, got[check], want)
		}
	}
	for _, want := range []string{
		"GPU: NVIDIA H200, 580.159.03",
		"1.20x (60.0 ms vs 50.0 ms)",
		"| supcon | 97.0 [96.8, 97.2] |",
		"10.5%", // resnet18: 56 of 535 TFLOP/s
		"PyTorch compile resnet50 3x32x32 512x2: 20 s of the deadline left",
		"1 hazards",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "| other |") {
		t.Error("the report copies more than the comparison's first table")
	}
	if b, err := os.ReadFile(filepath.Join(work, "report.txt")); err != nil || string(b) != string(out) {
		t.Errorf("report.txt is not what was printed: %v", err)
	}
}
