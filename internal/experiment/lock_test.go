package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sincere-ml/sincere/internal/runlock"
)

// TestRunLocked: while another holder has a run directory, pretrain,
// probe and a comparison's task fail at once naming it and write nothing;
// with WaitLock they wait for it and then run.
func TestRunLocked(t *testing.T) {
	c := tinyConfig(t, "train.epochs=1")
	out := t.TempDir()
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, runlock.FileName)); err == nil {
		t.Error("a finished pretrain left its lock")
	}
	metrics, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	_, l, err := runlock.Acquire(context.Background(), dir, runlock.Options{Command: "the test"})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	wantHolder := "pid " + strconv.Itoa(os.Getpid()) + " on host " + host + " (the test)"
	check := func(what string, err error) {
		t.Helper()
		var held *runlock.HeldError
		if !errors.As(err, &held) || !strings.Contains(err.Error(), wantHolder) {
			t.Errorf("%s of a locked run: %v", what, err)
		}
	}
	start := time.Now()
	_, err = Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: out, Resume: true})
	check("pretrain", err)
	_, _, err = Probe(context.Background(), dir, ProbeOptions{})
	check("probe", err)
	cfg := tinyCompare(t)
	cdir := RunDir(out, "tiny", "supcon", 1)
	os.MkdirAll(cdir, 0o755)
	_, cl, err := runlock.Acquire(context.Background(), cdir, runlock.Options{Command: "the test"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = RunTask(context.Background(), cfg, 0, CompareOptions{Out: out})
	check("compare task", err)
	if tasks, _ := Plan(cfg, CompareOptions{Out: out}); !strings.HasPrefix(tasks[0].Detail, "running: in use by "+wantHolder) ||
		tasks[0].Holder == nil || tasks[0].Holder.PID != os.Getpid() || tasks[1].Holder != nil {
		t.Errorf("plan of a locked run: %+v", tasks[0])
	}
	cl.Release()
	if time.Since(start) > 5*time.Second {
		t.Errorf("refusals took %v: they must fail at once", time.Since(start))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, MetricsFile)); string(b) != string(metrics) {
		t.Error("a refused pretrain touched metrics.jsonl")
	}
	if _, err := os.Stat(filepath.Join(dir, ProbeFile)); err == nil {
		t.Error("a refused probe wrote probe.json")
	}
	// Waiting: the holder lets go after a moment.
	go func() {
		time.Sleep(300 * time.Millisecond)
		l.Release()
	}()
	if _, _, err := Probe(context.Background(), dir, ProbeOptions{WaitLock: true}); err != nil {
		t.Fatalf("probe with WaitLock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, runlock.FileName)); err == nil {
		t.Error("probe left its lock")
	}
}
