package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
	"github.com/sincere-ml/sincere/internal/npyfile"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

// sincere runs the command line in-process and returns its exit status,
// stdout and stderr.
func sincere(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, false)
	return code, out.String(), errb.String()
}

var goldenNpy = filepath.Join(kerneltest.GoldenDir(), "npy")

// manifestCase is one entry of the golden npy/manifest.json.
type manifestCase struct {
	Loss         string  `json:"loss"`
	Temperature  float64 `json:"temperature"`
	Epsilon      float64 `json:"epsilon"`
	Embeddings   string  `json:"embeddings"`
	Labels       string  `json:"labels"`
	ExpectedLoss float64 `json:"expected_loss"`
	ExpectedGrad string  `json:"expected_grad"`
}

func TestLossCommandMatchesGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(goldenNpy, "manifest.json"))
	if err != nil {
		t.Fatalf("golden npy files: %v", err)
	}
	var cases []manifestCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("manifest lists no cases")
	}
	var worstLoss, worstGrad float64
	for _, c := range cases {
		gradPath := filepath.Join(t.TempDir(), "grad.npy")
		args := []string{"loss", "--loss", c.Loss, "--temperature", fmtFloat(c.Temperature),
			"--epsilon", fmtFloat(c.Epsilon), "--device", "cpu",
			"--embeddings", filepath.Join(goldenNpy, c.Embeddings), "--labels", filepath.Join(goldenNpy, c.Labels),
			"--grad-out", gradPath}
		code, stdout, stderr := sincere(args...)
		if code != 0 {
			t.Fatalf("%s %s: exit %d: %s", c.Loss, c.Embeddings, code, stderr)
		}
		var out lossOutput
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("stdout %q is not JSON: %v", stdout, err)
		}
		want, _, _, err := npyfile.ReadMatrix64(filepath.Join(goldenNpy, c.ExpectedGrad))
		if err != nil {
			t.Fatal(err)
		}
		got, n, d, err := npyfile.ReadMatrix(gradPath)
		if err != nil {
			t.Fatal(err)
		}
		if n != out.N || d != out.D || len(want) != n*d || out.Device != "cpu" || out.Anchors < 1 {
			t.Fatalf("%s: output %+v, gradient %d x %d, expected %d values", c.Loss, out, n, d, len(want))
		}
		le, ge := numcheck.RelErr(out.Loss, c.ExpectedLoss), numcheck.RelL2(got, want)
		worstLoss, worstGrad = max(worstLoss, le), max(worstGrad, ge)
		if le > 1e-5 || ge > 1e-4 {
			t.Errorf("%s %s (N=%d): loss %.9g want %.9g (rel %.2g), grad rel L2 %.2g", c.Loss, c.Embeddings, n, out.Loss, c.ExpectedLoss, le, ge)
		}
	}
	t.Logf("worst loss rel err %.2g, worst grad rel L2 %.2g over %d cases", worstLoss, worstGrad, len(cases))
}

func fmtFloat(v float64) string { return strings.TrimRight(strings.TrimRight(jsonNum(v), "0"), ".") }

func jsonNum(v float64) string {
	b, _ := json.Marshal(v)
	if !strings.Contains(string(b), ".") {
		return string(b) + ".0"
	}
	return string(b)
}

// writeNpy writes a float32 matrix for the bad-input tests.
func writeNpy(t *testing.T, dir, name string, v []float32, rows, cols int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := npyfile.WriteMatrix(p, v, rows, cols); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeLabels writes int64 labels as a (n,) .npy file by hand.
func writeLabels(t *testing.T, dir, name string, labels []int64) string {
	t.Helper()
	dict := "{'descr': '<i8', 'fortran_order': False, 'shape': (" + itoa(len(labels)) + ",), }"
	for (10+len(dict)+1)%64 != 0 {
		dict += " "
	}
	dict += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = append(b, byte(len(dict)), byte(len(dict)>>8))
	b = append(b, dict...)
	for _, l := range labels {
		for k := range 8 {
			b = append(b, byte(uint64(l)>>(8*k)))
		}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestLossCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	z := writeNpy(t, dir, "z.npy", []float32{1, 0, 0, 1, 0.6, 0.8, 0.8, 0.6}, 4, 2)
	y := writeLabels(t, dir, "y.npy", []int64{0, 0, 1, 1})
	good, _ := os.ReadFile(z)
	truncated := filepath.Join(dir, "truncated.npy")
	os.WriteFile(truncated, good[:len(good)-5], 0o644)
	garbage := filepath.Join(dir, "garbage.npy")
	os.WriteFile(garbage, []byte("this is not a numpy file"), 0o644)
	nan := writeNpy(t, dir, "nan.npy", []float32{1, 0, float32(math.NaN()), 1, 0.6, 0.8, 0.8, 0.6}, 4, 2)
	inf := writeNpy(t, dir, "inf.npy", []float32{1, 0, 0, 1, float32(math.Inf(-1)), 0.8, 0.8, 0.6}, 4, 2)
	threeD := writeLabels(t, dir, "flat.npy", []int64{1, 2, 3, 4, 5, 6, 7, 8})
	yShort := writeLabels(t, dir, "y3.npy", []int64{0, 0, 1})
	yOnce := writeLabels(t, dir, "once.npy", []int64{0, 1, 2, 3})
	intZ := filepath.Join(dir, "intz.npy")
	os.WriteFile(intZ, bytes.Replace(good, []byte("'<f4'"), []byte("'<i4'"), 1), 0o644)

	base := func(zp, yp string) []string {
		return []string{"loss", "--loss", "sincere", "--temperature", "0.1", "--embeddings", zp, "--labels", yp}
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"truncated .npy", base(truncated, y), "truncated"},
		{"malformed .npy", base(garbage, y), "not a .npy file"},
		{"missing file", base(filepath.Join(dir, "none.npy"), y), "none.npy"},
		{"wrong shape", base(threeD, y), "2-D"},
		{"wrong dtype", base(intZ, y), "float32 or float64"},
		{"labels as embeddings", base(z, z), "1-D"},
		{"NaN", base(nan, y), "NaN"},
		{"Inf", base(inf, y), "Inf"},
		{"label count", base(z, yShort), "3 labels for the 4 embeddings"},
		{"temperature 0", []string{"loss", "--loss", "supcon", "--temperature", "0", "--embeddings", z, "--labels", y}, "temperature"},
		{"temperature < 0", []string{"loss", "--loss", "supcon", "--temperature", "-1", "--embeddings", z, "--labels", y}, "temperature"},
		{"unknown loss", []string{"loss", "--loss", "simclr", "--temperature", "0.1", "--embeddings", z, "--labels", y}, "unknown loss"},
		{"no anchors", base(z, yOnce), "no anchor has a positive"},
		{"missing flag", []string{"loss", "--loss", "sincere", "--embeddings", z, "--labels", y}, "temperature"},
		{"unknown device", append(base(z, y), "--device", "tpu"), "unknown device"},
		{"cuda without support", append(base(z, y), "--device", "cuda"), "make cuda"},
		{"unknown precision", append(base(z, y), "--device", "cpu", "--precision", "fp16"), "unknown CUDA precision"},
		{"unknown flag", append(base(z, y), "--temprature", "1"), "unknown flag"},
	}
	for _, c := range cases {
		out := filepath.Join(t.TempDir(), "grad.npy")
		code, stdout, stderr := sincere(append(c.args, "--grad-out", out)...)
		if code == 0 {
			t.Errorf("%s: exit 0, stdout %q", c.name, stdout)
			continue
		}
		if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: stderr %q should be one line mentioning %q", c.name, stderr, c.want)
		}
		if stdout != "" {
			t.Errorf("%s: printed %q on stdout", c.name, stdout)
		}
		if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
			t.Errorf("%s: left %d files in the output directory", c.name, len(entries))
		}
	}
}

func TestLossCommandOutput(t *testing.T) {
	dir := t.TempDir()
	z := writeNpy(t, dir, "z.npy", []float32{1, 0, 0, 1, 0.6, 0.8, 0.8, 0.6, 0, -1}, 5, 2)
	y := writeLabels(t, dir, "y.npy", []int64{0, 0, 1, 1, 9})
	code, stdout, stderr := sincere("loss", "--loss", "supcon", "--temperature", "0.5", "--embeddings", z, "--labels", y)
	if code != 0 {
		t.Fatal(stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"n": 5.0, "d": 2.0, "anchors": 4.0, "device": "cpu", "method": "supcon", "base_temperature": 0.5} {
		if out[key] != want {
			t.Errorf("%s = %v, want %v (output %s)", key, out[key], want, stdout)
		}
	}
	if _, ok := out["loss"].(float64); !ok {
		t.Errorf("no numeric loss in %s", stdout)
	}
	if strings.Count(stdout, "\n") != 1 {
		t.Errorf("stdout is not one JSON line: %q", stdout)
	}
	// --device auto (the default) says when it falls back to the CPU.
	if !strings.Contains(stderr, "computed on the CPU") || !strings.Contains(stderr, "make cuda") {
		t.Errorf("no note of the CPU fallback on stderr: %q", stderr)
	}
	if _, stdout, stderr = sincere("loss", "--loss", "supcon", "--temperature", "0.5", "--embeddings", z, "--labels", y, "--device", "cpu"); stderr != "" || stdout == "" {
		t.Errorf("--device cpu: stderr %q", stderr)
	}
}

func TestHelpTeaches(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"loss", "--help"}, {"bench", "loss", "--help"}, {"slurm", "--help"}, {"compare", "--help"}} {
		code, stdout, _ := sincere(args...)
		if code != 0 || !strings.Contains(stdout, "Example") && !strings.Contains(stdout, "Examples") {
			t.Errorf("%v: exit %d, help without examples:\n%s", args, code, stdout)
		}
	}
	code, stdout, _ := sincere("version")
	if code != 0 || !strings.Contains(stdout, "sincere ") || !strings.Contains(stdout, "kernels") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
}

func TestBenchLossSmall(t *testing.T) {
	code, stdout, stderr := sincere("bench", "loss", "--n", "100", "--d", "16", "--loss", "sincere", "--json", "--quiet", "--device", "cpu")
	if code != 0 {
		t.Fatal(stderr)
	}
	var row struct {
		N      int     `json:"n"`
		Runs   int     `json:"runs"`
		Median float64 `json:"median_ms"`
		Value  float64 `json:"loss_value"`
	}
	if err := json.Unmarshal([]byte(stdout), &row); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	if row.N != 100 || row.Runs < 5 || !(row.Median > 0) || !(row.Value > 0) {
		t.Errorf("bench row %+v", row)
	}
	if code, _, stderr := sincere("bench", "loss", "--runs", "3"); code == 0 || !strings.Contains(stderr, "at least 5") {
		t.Errorf("--runs 3: exit %d, %q", code, stderr)
	}
}

// built is the sincere binary the tests that run a real process share:
// built once per test run, removed by TestMain.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// sincereBinary returns the path of the built binary, building it the first
// time; -short skips the tests that need it.
func sincereBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "sincere-test-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "sincere")
		if out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// TestExitStatus runs the built binary, to see the status the shell sees.
func TestExitStatus(t *testing.T) {
	cmd := exec.Command(sincereBinary(t), "loss", "--loss", "nope", "--temperature", "1", "--embeddings", "x", "--labels", "y")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.HasPrefix(stderr.String(), "sincere: unknown loss") {
		t.Errorf("stderr %q", stderr.String())
	}
}

// TestLossWritesNothingUnlessFinite: an overflowing loss is a clear error
// before any file is touched: an existing --grad-out keeps its content,
// and a folder given as --grad-out is refused before any work.
func TestLossWritesNothingUnlessFinite(t *testing.T) {
	dir := t.TempDir()
	big := float32(1e20)
	z := writeNpy(t, dir, "z.npy", []float32{big, 0, 0, big, big, 0, 0, big}, 4, 2)
	unit := writeNpy(t, dir, "u.npy", []float32{1, 0, 0, 1, 0.6, 0.8, 0.8, 0.6}, 4, 2)
	y := writeLabels(t, dir, "y.npy", []int64{0, 1, 0, 1})
	g := filepath.Join(dir, "g.npy")
	if err := os.WriteFile(g, []byte("earlier result"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"rows scaled by 1e20", []string{"--temperature", "0.1", "--embeddings", z}},
		{"temperature 1e-300", []string{"--temperature", "1e-300", "--embeddings", unit}},
	} {
		for _, loss := range []string{"supcon", "sincere"} {
			args := append([]string{"loss", "--loss", loss, "--labels", y, "--grad-out", g, "--device", "cpu"}, c.args...)
			code, stdout, stderr := sincere(args...)
			if code == 0 || !strings.Contains(stderr, "overflowed") || strings.Contains(stderr, "json") || stdout != "" {
				t.Errorf("%s, %s: exit %d, stdout %q, stderr %q", c.name, loss, code, stdout, stderr)
			}
			if b, _ := os.ReadFile(g); string(b) != "earlier result" {
				t.Errorf("%s, %s: --grad-out was overwritten", c.name, loss)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("the failed runs left files behind: %d entries", len(entries))
	}
	folder := t.TempDir()
	code, _, stderr := sincere("loss", "--loss", "sincere", "--temperature", "0.1", "--embeddings", unit, "--labels", y, "--grad-out", folder)
	if code == 0 || !strings.Contains(stderr, "is a folder") {
		t.Errorf("--grad-out FOLDER: exit %d, %q", code, stderr)
	}
	for _, d := range []string{folder, filepath.Dir(folder), "/"} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("--grad-out FOLDER left %s in %s", e.Name(), d)
			}
		}
	}
}

// TestLossOfOneClassIsUndefined: with every label equal there are no
// negatives; the command says the loss is undefined rather than print 0.
func TestLossOfOneClassIsUndefined(t *testing.T) {
	dir := t.TempDir()
	z := writeNpy(t, dir, "z.npy", []float32{1, 0, 0, 1, 0.6, 0.8, 0.8, 0.6}, 4, 2)
	y := writeLabels(t, dir, "y.npy", []int64{3, 3, 3, 3})
	for _, loss := range []string{"sincere", "supcon", "eps-supinfonce"} {
		code, stdout, stderr := sincere("loss", "--loss", loss, "--temperature", "0.1", "--embeddings", z, "--labels", y)
		if code == 0 || stdout != "" || !strings.Contains(stderr, "undefined") || !strings.Contains(stderr, "two classes") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", loss, code, stdout, stderr)
		}
	}
}

// TestSizeFlagsAreBounded: sizes and worker counts given as flags are
// checked (overflow-safe) before anything is allocated or started.
func TestSizeFlagsAreBounded(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("data: {dataset: synthetic}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "loss", "--n", "4000000000", "--device", "cpu"}, "limit"},
		{[]string{"bench", "loss", "--n", "100", "--d", "4611686018427387904", "--device", "cpu"}, "limit"},
		{[]string{"bench", "loss", "--n", "100", "--workers", "100000000", "--device", "cpu"}, "--workers: must be 0 (one per core) to 256"},
		{[]string{"bench", "data", "--workers", "1000000"}, "--workers: must be 0 (one per core) to 256"},
		{[]string{"pretrain", "--config", cfg, "--set", "data.workers=1000000"}, "data.workers"},
		{[]string{"pretrain", "--config", cfg, "--set", "train.workers=100000000"}, "train.workers"},
		{[]string{"pretrain", "--config", cfg, "--set", "data.dataset=synthetic:1x4294967296x4294967296"}, "4096"},
	} {
		code, _, stderr := sincere(c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q should name %q", c.args, code, stderr, c.want)
		}
	}
}
