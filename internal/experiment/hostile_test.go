package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/encoder"
)

// finishedRun trains a one-epoch tiny run and returns its directory.
func finishedRun(t *testing.T, out string) (Config, string) {
	t.Helper()
	c := tinyConfig(t, "train.epochs=1")
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

// TestModelFileIsValidated: every field of a model file is checked against
// limits and the run's configuration before anything is built, and
// non-finite weights are refused; a crafted file is an error naming it,
// never a panic or a huge allocation.
func TestModelFileIsValidated(t *testing.T) {
	_, dir := finishedRun(t, t.TempDir())
	path := filepath.Join(dir, ModelFile)
	cases := []struct {
		name   string
		change func(m *Trained)
		want   string
	}{
		{"1e12 classes", func(m *Trained) { m.Head, m.Method, m.NumClasses = encoder.HeadClassifier, MethodCE, 1e12 }, "outputs"},
		{"1e12 classes, as many names", func(m *Trained) {
			m.Head, m.Method, m.NumClasses, m.Model.Width = encoder.HeadClassifier, MethodCE, 1<<16, 16
			m.Classes = make([]string, 1<<16)
		}, "config.yaml"},
		{"input of 1e6 x 1e6", func(m *Trained) { m.Input = [3]int{1, 1e6, 1e6} }, "input"},
		{"a wider model than trained", func(m *Trained) { m.Model.Width = 16 }, "config.yaml"},
		{"resnet18 of width 16", func(m *Trained) { m.Model.Arch, m.Model.Width = encoder.ArchResNet18, 16 }, "parameters"},
		{"NaN weight", func(m *Trained) { m.Weights.Params[0].Values[0] = float32(math.NaN()) }, "not finite"},
		{"Inf statistic", func(m *Trained) { m.Weights.States[0].Values[0] = float32(math.Inf(1)) }, "not finite"},
		{"zero deviation", func(m *Trained) { m.Std[0] = 0 }, "deviation"},
		{"no means", func(m *Trained) { m.Mean = nil }, "means"},
		{"unknown method", func(m *Trained) { m.Method = "../x" }, "method"},
		{"format 7", func(m *Trained) { m.Format = 7 }, "format 7"},
		{"a weight short", func(m *Trained) { m.Weights.Params[0].Values = m.Weights.Params[0].Values[1:] }, "values"},
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		var m Trained
		if err := decodeGob(bytes.NewReader(raw), path, "model file", &m); err != nil {
			t.Fatal(err)
		}
		c.change(&m)
		if err := m.save(path); err != nil {
			t.Fatal(err)
		}
		_, _, err := Probe(context.Background(), dir, ProbeOptions{})
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want an error naming the file and %q)", c.name, err, c.want)
		}
	}
	if err := os.WriteFile(path, raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Probe(context.Background(), dir, ProbeOptions{}); err == nil || !strings.Contains(err.Error(), "corrupt model file") {
		t.Errorf("a truncated model file: %v", err)
	}
}

// TestResumeOfACorruptModelFile: --resume of a finished run whose
// model.gob is truncated is not "already finished": the model is rebuilt
// from the final checkpoint, or, without one, the error says so.
func TestResumeOfACorruptModelFile(t *testing.T) {
	out := t.TempDir()
	c, dir := finishedRun(t, out)
	path := filepath.Join(dir, ModelFile)
	want, err := LoadTrained(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, raw[:len(raw)/3], 0o644)
	if _, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out, Resume: true}); err != nil {
		t.Fatalf("resume with a truncated model and the final checkpoint: %v", err)
	}
	got, err := LoadTrained(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := got.Weights.Equal(want.Weights); !ok {
		t.Errorf("the rebuilt model differs: %s", diff)
	}
	os.WriteFile(path, raw[:len(raw)/3], 0o644)
	os.Remove(filepath.Join(dir, CheckpointFile))
	_, err = Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out, Resume: true})
	if err == nil || !strings.Contains(err.Error(), "corrupt model file") || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("resume with a truncated model and no checkpoint: %v", err)
	}
}

// TestCheckpointIsValidated: a checkpoint's position, counters and weights
// are checked against the run before it is used: negative or impossible
// positions, a metrics length beyond the file, NaN weights are errors
// naming the file, and nothing is trained, extended or declared done.
func TestCheckpointIsValidated(t *testing.T) {
	c := tinyConfig(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Pretrain(ctx, c, PretrainOptions{Method: "sincere", Seed: 1, Out: out, Reporter: &cancelAfter{n: 4, cancel: cancel}})
	cancel()
	if err == nil {
		t.Fatal("the run was not interrupted")
	}
	dir := RunDir(out, c.Name, "sincere", 1)
	path := filepath.Join(dir, CheckpointFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := os.Stat(filepath.Join(dir, MetricsFile))
	cases := []struct {
		name   string
		change func(ck *Checkpoint)
		want   string
	}{
		{"batch -3", func(ck *Checkpoint) { ck.Batch, ck.EpochBatches = -3, -3 }, "negative"},
		{"epoch -5", func(ck *Checkpoint) { ck.Epoch = -5 }, "negative"},
		{"epoch 1000", func(ck *Checkpoint) { ck.Epoch, ck.Batch, ck.EpochBatches = 1000, 0, 0 }, "past the run's 2 epochs"},
		{"2 epochs and a batch", func(ck *Checkpoint) { ck.Epoch = 2 }, "past the run's"},
		{"step out of place", func(ck *Checkpoint) { ck.Step = 999 }, "step 999"},
		{"batch beyond the epoch", func(ck *Checkpoint) { ck.Batch, ck.EpochBatches, ck.Step = 99, 99, 99 }, "batch 99"},
		{"metrics of 2^40 bytes", func(ck *Checkpoint) { ck.MetricsBytes = 1 << 40 }, "checkpoint covers 1099511627776"},
		{"NaN weight", func(ck *Checkpoint) { ck.Weights.Params[1].Values[0] = float32(math.NaN()) }, "not finite"},
		{"NaN momentum", func(ck *Checkpoint) { ck.Weights.Momentum[0].Values[0] = float32(math.NaN()) }, "not finite"},
		{"no momentum", func(ck *Checkpoint) { ck.Weights.Momentum = nil }, "momentum"},
		{"NaN loss sum", func(ck *Checkpoint) { ck.EpochLoss = math.NaN() }, "loss sum"},
		{"another seed", func(ck *Checkpoint) { ck.Seed = 2 }, "seed 2"},
	}
	for _, tc := range cases {
		var ck Checkpoint
		if err := decodeGob(bytes.NewReader(raw), path, "checkpoint", &ck); err != nil {
			t.Fatal(err)
		}
		tc.change(&ck)
		if err := ck.save(path); err != nil {
			t.Fatal(err)
		}
		_, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out, Resume: true})
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want an error naming the run's file and %q)", tc.name, err, tc.want)
		}
		if Finished(dir) {
			t.Fatalf("%s: the run was declared done", tc.name)
		}
		if st, _ := os.Stat(filepath.Join(dir, MetricsFile)); st.Size() != metrics.Size() {
			t.Fatalf("%s: metrics.jsonl went from %d to %d bytes", tc.name, metrics.Size(), st.Size())
		}
	}
}

// TestRunFilesAreNotLinks: metrics.jsonl and the features folder are
// written in place, so a symbolic link there is refused rather than
// followed into another file.
func TestRunFilesAreNotLinks(t *testing.T) {
	c := tinyConfig(t, "train.epochs=1")
	out := t.TempDir()
	dir := RunDir(out, c.Name, "sincere", 1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim.txt")
	os.WriteFile(victim, []byte("precious"), 0o644)
	if err := os.Symlink(victim, filepath.Join(dir, MetricsFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("metrics.jsonl as a link: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the link's target now holds %q", b)
	}
	os.Remove(filepath.Join(dir, MetricsFile))
	if _, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out}); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, FeaturesDir)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Probe(context.Background(), dir, ProbeOptions{}); err == nil || !strings.Contains(err.Error(), FeaturesDir) {
		t.Errorf("features as a link: %v", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the probe wrote %d files through the link", len(entries))
	}
}

// TestStaleTemporariesAreCleaned: the temporary files a killed process
// leaves (.checkpoint.gob.tmp-*) are removed when the run starts again.
func TestStaleTemporariesAreCleaned(t *testing.T) {
	c := tinyConfig(t, "train.epochs=1")
	out := t.TempDir()
	dir := RunDir(out, c.Name, "sincere", 1)
	os.MkdirAll(filepath.Join(dir, FeaturesDir), 0o755)
	stale := []string{".checkpoint.gob.tmp-123", ".model.gob.tmp-9", ".config.yaml.tmp-1", ".probe.json.tmp-77"}
	for _, s := range stale {
		os.WriteFile(filepath.Join(dir, s), make([]byte, 1000), 0o644)
	}
	os.WriteFile(filepath.Join(dir, FeaturesDir, ".x-features.npy.tmp-5"), []byte("x"), 0o644)
	mine := filepath.Join(dir, "notes.tmp-1")
	os.WriteFile(mine, []byte("the user's"), 0o644)
	if _, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Probe(context.Background(), dir, ProbeOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range append(stale, filepath.Join(FeaturesDir, ".x-features.npy.tmp-5")) {
		if _, err := os.Stat(filepath.Join(dir, s)); err == nil {
			t.Errorf("%s is still there", s)
		}
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a file of the user's was removed: %v", err)
	}
}

// TestFewerThanTwoClassesIsAnError: training on one class (a class filter,
// a folder with one class) is refused before any training.
func TestFewerThanTwoClassesIsAnError(t *testing.T) {
	if _, err := Load("", "sincere", []string{"data.classes=[3]"}); err == nil || !strings.Contains(err.Error(), "data.classes") {
		t.Errorf("data.classes=[3]: %v", err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "only"), 0o755)
	for _, name := range []string{"a.png", "b.png", "c.png", "d.png"} {
		// A 1x1 grey PNG.
		os.WriteFile(filepath.Join(root, "only", name), []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00IEND\xaeB`\x82"), 0o644)
	}
	for _, method := range []string{"sincere", "ce"} {
		c := tinyConfig(t, "data.dataset=folder:"+root, "data.subset=0", "data.image_size=8", "train.batch_size=2")
		out := t.TempDir()
		_, err := Pretrain(context.Background(), c, PretrainOptions{Method: method, Seed: 1, Out: out})
		if err == nil || !strings.Contains(err.Error(), "two classes") {
			t.Errorf("%s on one class: %v", method, err)
		}
		if _, err := os.Stat(RunDir(out, c.Name, method, 1)); err == nil {
			t.Errorf("%s on one class left a run directory", method)
		}
	}
}

// TestNoCheckpointYetIsSaid: a run that fails before its first checkpoint
// does not name a checkpoint that does not exist.
func TestNoCheckpointYetIsSaid(t *testing.T) {
	c := tinyConfig(t, "train.lr=1e30", "train.warmup_steps=0", "train.checkpoint_every=1000", "train.weight_decay=0")
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no checkpoint was written yet") || strings.Contains(err.Error(), "last good checkpoint") {
		t.Errorf("a run failing before its first checkpoint: %v", err)
	}
	if fileExists(filepath.Join(dir, CheckpointFile)) {
		t.Error("a checkpoint exists after all")
	}
}

// TestCompareChecksWhatItReadsBack: an edited probe.json or probe.gob is
// validated (and the run probed again) rather than trusted into a panic,
// and a comparison that fails late has written none of its files.
func TestCompareChecksWhatItReadsBack(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "small.yaml")
	os.WriteFile(cfg, []byte(`name: small
methods: [supcon, sincere]
seeds: [1]
data: {dataset: synthetic, subset: 200, workers: 2}
model: {arch: cnn, width: 0.25, embedding: 16}
train: {epochs: 1, batch_size: 40, lr: 0.05, warmup_steps: 2, device: cpu}
probe: {train_subset: 200, linear_epochs: 2, bootstrap: 20}
`), 0o644)
	out := t.TempDir()
	first, err := Compare(context.Background(), cfg, CompareOptions{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(out, "small", "sincere-seed1")
	probePath := filepath.Join(run, ProbeFile)
	raw, _ := os.ReadFile(probePath)
	var p ProbeReport
	json.Unmarshal(raw, &p)
	edits := map[string]func(p *ProbeReport){
		"collapsed without a margin": func(p *ProbeReport) {
			p.Collapsed = true
			p.Results = p.Results[:len(p.Results)-1]
		},
		"an accuracy of 7": func(p *ProbeReport) { p.Results[0].Value = 7 },
		"another seed":     func(p *ProbeReport) { p.Seed = 9 },
		"another N":        func(p *ProbeReport) { p.Results[1].N = 3 },
	}
	for name, edit := range edits {
		q := p
		q.Results = append([]ProbeResult(nil), p.Results...)
		edit(&q)
		b, _ := json.Marshal(q)
		os.WriteFile(probePath, b, 0o644)
		var log logged
		c, err := Compare(context.Background(), cfg, CompareOptions{Out: out, Reporter: &log})
		if err != nil || c.Markdown != first.Markdown || !strings.Contains(log.String(), "probing again") {
			t.Errorf("%s: %v; the table should be the first one again, log %q", name, err, log.String())
		}
	}
	// probe.gob with lists of unequal length.
	o, err := LoadOutcomes(run)
	if err != nil {
		t.Fatal(err)
	}
	o[0].KNN1 = o[0].KNN1[1:]
	writeGob(filepath.Join(run, OutcomesFile), o)
	if c, err := Compare(context.Background(), cfg, CompareOptions{Out: out}); err != nil || c.Markdown != first.Markdown {
		t.Errorf("an edited probe.gob: %v", err)
	}
	// A late failure (a corrupt metrics file) leaves every output as it was.
	dir := filepath.Join(out, "small")
	before := map[string]os.FileInfo{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() {
			before[e.Name()], _ = os.Stat(filepath.Join(dir, e.Name()))
		}
	}
	os.WriteFile(filepath.Join(run, MetricsFile), []byte("{not json\n"), 0o644)
	if _, err := Compare(context.Background(), cfg, CompareOptions{Out: out}); err == nil || !strings.Contains(err.Error(), MetricsFile) {
		t.Fatalf("a corrupt metrics file: %v", err)
	}
	for name, st := range before {
		now, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !os.SameFile(st, now) || !now.ModTime().Equal(st.ModTime()) {
			t.Errorf("%s was rewritten by the failed comparison", name)
		}
	}
}

// logged records what a Reporter is told.
type logged struct {
	nopReporter
	b strings.Builder
}

func (l *logged) Logf(format string, args ...any) {
	l.b.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
}
func (l *logged) String() string { return l.b.String() }
