package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tinyArgs train a small network on synthetic data: 15 batches per epoch.
func tinyArgs(out string, extra ...string) []string {
	return append([]string{"pretrain", "--config", filepath.Join("..", "..", "configs", "quick.yaml"), "--method", "sincere",
		"--out", out, "--device", "cpu",
		"--set", "data.dataset=synthetic", "--set", "data.subset=600", "--set", "model.width=0.25", "--set", "model.embedding=16",
		"--set", "train.epochs=2", "--set", "train.batch_size=40", "--set", "train.warmup_steps=5", "--set", "train.checkpoint_every=4"}, extra...)
}

func TestPretrainCommand(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := sincere(tinyArgs(out)...)
	if code != 0 {
		t.Fatal(stderr)
	}
	dir := strings.TrimSpace(stdout)
	if dir != filepath.Join(out, "quick", "sincere-seed1") {
		t.Fatalf("printed %q", stdout)
	}
	for _, f := range []string{"config.yaml", "metrics.jsonl", "checkpoint.gob", "model.gob"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
	if !strings.Contains(stderr, "parameters") || !strings.Contains(stderr, "epoch 2/2: mean loss") {
		t.Errorf("progress lines:\n%s", stderr)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if !strings.Contains(string(cfg), "batch_size: 40") {
		t.Errorf("resolved config lacks the --set value:\n%s", cfg)
	}
	if code, _, stderr := sincere(tinyArgs(out)...); code == 0 || !strings.Contains(stderr, "finished run") {
		t.Errorf("rerun over a finished run: %d %q", code, stderr)
	}
}

func TestPretrainConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("train: {lrr: 0.1}\n"), 0o644)
	cases := [][]string{
		{"pretrain", "--config", bad},
		{"pretrain", "--config", filepath.Join(t.TempDir(), "missing.yaml")},
		append(tinyArgs(t.TempDir()), "--set", "train.epochs=0"),
		append(tinyArgs(t.TempDir()), "--set", "model.arch=vgg"),
		append(tinyArgs(t.TempDir()), "--method", "simclr"),
		{"pretrain"},
	}
	want := []string{"unknown key train.lrr", "missing.yaml", "train.epochs", "model.arch", "simclr", "config"}
	for i, args := range cases {
		code, _, stderr := sincere(args...)
		if code == 0 || !strings.Contains(stderr, want[i]) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q should be one line naming %q", args[len(args)-1], code, stderr, want[i])
		}
	}
	t.Setenv("SINCERE_TRAIN_MOMENTUM", "lots")
	if code, _, stderr := sincere(tinyArgs(t.TempDir())...); code == 0 || !strings.Contains(stderr, "train.momentum") {
		t.Errorf("bad environment variable: %d %q", code, stderr)
	}
}

// TestKillAndResume runs the real binary: one run uninterrupted; one
// stopped by SIGTERM (which writes a checkpoint) and resumed; one killed by
// SIGKILL mid-epoch (which leaves the last periodic checkpoint) and
// resumed. All three end with the same model file.
func TestKillAndResume(t *testing.T) {
	bin := sincereBinary(t)
	run := func(out string, extra ...string) *exec.Cmd {
		c := exec.Command(bin, append(tinyArgs(out, "--set", "train.epochs=3"), extra...)...)
		c.Stderr = &bytes.Buffer{}
		return c
	}
	ref := t.TempDir()
	if err := run(ref).Run(); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(ref, "quick", "sincere-seed1", "model.gob"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		out := t.TempDir()
		ckpt := filepath.Join(out, "quick", "sincere-seed1", "checkpoint.gob")
		c := run(out)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the first periodic checkpoint, then a little more.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := os.Stat(ckpt); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond)
		c.Process.Signal(sig)
		err := c.Wait()
		if ee, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%v: the run was not stopped (%v); make it longer", sig, err)
		} else if sig == syscall.SIGTERM && ee.ExitCode() != 130 {
			t.Fatalf("SIGTERM: exit %d, stderr %s", ee.ExitCode(), c.Stderr)
		}
		if _, err := os.Stat(ckpt); err != nil {
			t.Fatalf("%v: no checkpoint left", sig)
		}
		resume := run(out, "--resume")
		if err := resume.Run(); err != nil {
			t.Fatalf("%v: resume: %v\n%s", sig, err, resume.Stderr)
		}
		got, err := os.ReadFile(filepath.Join(out, "quick", "sincere-seed1", "model.gob"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%v then --resume: the model differs from the uninterrupted run's", sig)
		}
	}
}
