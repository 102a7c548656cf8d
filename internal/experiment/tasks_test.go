package experiment

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// comparisonFiles reads every file a comparison writes into dir.
func comparisonFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range []string{CompareJSON, CompareCSV, CompareMarkdown, LossFigure, "similarity-supcon.png", "similarity-sincere.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return files
}

func states(tasks []Task) string {
	var s []string
	for _, t := range tasks {
		s = append(s, string(t.State))
	}
	return strings.Join(s, " ")
}

// TestTasksGiveTheSameComparison runs a comparison once whole, then as
// separate tasks in another order followed by Aggregate, into the same
// folder: every file must come out byte for byte the same.
func TestTasksGiveTheSameComparison(t *testing.T) {
	if testing.Short() {
		t.Skip("trains eight runs")
	}
	cfg := tinyCompare(t)
	out := t.TempDir()
	ctx := context.Background()
	if _, err := Compare(ctx, cfg, CompareOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, "tiny")
	want := comparisonFiles(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	tasks, err := Plan(cfg, CompareOptions{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 4 || states(tasks) != "missing missing missing missing" {
		t.Fatalf("plan of a new comparison: %+v", tasks)
	}
	for i, w := range []struct {
		method string
		seed   uint64
	}{{"supcon", 1}, {"supcon", 2}, {"sincere", 1}, {"sincere", 2}} {
		if tasks[i].Index != i || tasks[i].Method != w.method || tasks[i].Seed != w.seed || tasks[i].Dir != RunDir(out, "tiny", w.method, w.seed) {
			t.Errorf("task %d is %+v, want %s seed %d", i, tasks[i], w.method, w.seed)
		}
	}
	for _, i := range []int{3, 0, 2} {
		task, err := RunTask(ctx, cfg, i, CompareOptions{Out: out})
		if err != nil {
			t.Fatal(err)
		}
		if task.State != TaskDone {
			t.Errorf("task %d after running: %s", i, task.State)
		}
	}
	// A partial run: a checkpoint and no model.
	partial := tasks[1].Dir
	if err := os.MkdirAll(partial, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(partial, CheckpointFile), nil, 0o644)
	if tasks, _ = Plan(cfg, CompareOptions{Out: out}); states(tasks) != "done partial done done" {
		t.Errorf("plan after three tasks: %s", states(tasks))
	}
	_, err = Aggregate(ctx, cfg, CompareOptions{Out: out})
	if err == nil || !strings.Contains(err.Error(), "task 1 "+partial+" (partial)") || strings.Contains(err.Error(), "task 0") {
		t.Errorf("aggregate with a partial run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CompareJSON)); err == nil {
		t.Error("a failed aggregate wrote compare.json")
	}
	os.Remove(filepath.Join(partial, CheckpointFile))
	for _, bad := range []int{-1, 4} {
		if _, err := RunTask(ctx, cfg, bad, CompareOptions{Out: out}); err == nil || !strings.Contains(err.Error(), "tasks 0 to 3") {
			t.Errorf("task %d: %v", bad, err)
		}
	}
	if _, err := RunTask(ctx, cfg, 1, CompareOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	if _, err := Aggregate(ctx, cfg, CompareOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	got := comparisonFiles(t, dir)
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s from the tasks and --aggregate differs from a plain compare's", name)
		}
	}
	// A run trained with other settings is named as changed.
	if tasks, _ = Plan(cfg, CompareOptions{Out: out, Sets: []string{"train.lr=0.2"}}); states(tasks) != "changed changed changed changed" {
		t.Errorf("plan with another lr: %s", states(tasks))
	}
}
