package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	if testing.Short() {
		t.Skip("trains a network")
	}
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
// SIGKILL mid-epoch (which leaves the last periodic checkpoint, and the
// lock, which the resumed run takes over); one comparison task (as a Slurm
// array task runs it) stopped by SIGTERM and run again. All end with the
// same model file. While a run trains, a second process on it is refused
// at once, naming the first.
func TestKillAndResume(t *testing.T) {
	bin := sincereBinary(t)
	sets := append(tinyArgs("", "--set", "train.epochs=3")[9:], "--set", "train.device=cpu") // the --set flags
	pretrain := func(out string, extra ...string) []string {
		return append(tinyArgs(out, "--set", "train.epochs=3"), extra...)
	}
	task := func(out string, extra ...string) []string {
		return append(append([]string{"compare", "--config", filepath.Join("..", "..", "configs", "quick.yaml"), "--out", out, "--task", "3",
			"--set", "probe.datasets=[]", "--set", "probe.train_subset=300", "--set", "probe.bootstrap=10", "--set", "probe.linear_epochs=1"}, sets...), extra...)
	}
	run := func(args []string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Stderr = &bytes.Buffer{}
		return c
	}
	ref := t.TempDir()
	if err := run(pretrain(ref)).Run(); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(ref, "quick", "sincere-seed1", "model.gob"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name           string
		sig            syscall.Signal
		start, restart func(string, ...string) []string
	}{
		{"pretrain, SIGTERM", syscall.SIGTERM, pretrain, func(out string, _ ...string) []string { return pretrain(out, "--resume") }},
		{"pretrain, SIGKILL", syscall.SIGKILL, pretrain, func(out string, _ ...string) []string { return pretrain(out, "--resume") }},
		{"compare --task, SIGTERM", syscall.SIGTERM, task, task},
	}
	for _, tc := range cases {
		out := t.TempDir()
		runDir := filepath.Join(out, "quick", "sincere-seed1")
		ckpt, lock := filepath.Join(runDir, "checkpoint.gob"), filepath.Join(runDir, "lock")
		c := run(tc.start(out))
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// Signal the run as soon as its first periodic checkpoint exists:
		// mid-epoch, with more steps to go.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := os.Stat(ckpt); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		code, _, stderr := sincere(pretrain(out, "--resume")...)
		if code == 0 || !strings.Contains(stderr, "is in use by pid "+strconv.Itoa(c.Process.Pid)) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: a second process on the run: exit %d, %q", tc.name, code, stderr)
		}
		c.Process.Signal(tc.sig)
		err := c.Wait()
		if ee, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%s: the run was not stopped (%v); make it longer", tc.name, err)
		} else if tc.sig == syscall.SIGTERM && ee.ExitCode() != 130 {
			t.Fatalf("%s: exit %d, stderr %s", tc.name, ee.ExitCode(), c.Stderr)
		}
		if _, err := os.Stat(ckpt); err != nil {
			t.Fatalf("%s: no checkpoint left", tc.name)
		}
		if _, err := os.Stat(lock); (err == nil) != (tc.sig == syscall.SIGKILL) {
			t.Errorf("%s: lock file left: %v", tc.name, err == nil)
		}
		resume := run(tc.restart(out))
		if err := resume.Run(); err != nil {
			t.Fatalf("%s: resume: %v\n%s", tc.name, err, resume.Stderr)
		}
		got, err := os.ReadFile(filepath.Join(runDir, "model.gob"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s then resumed: the model differs from the uninterrupted run's", tc.name)
		}
		if _, err := os.Stat(lock); err == nil {
			t.Errorf("%s: the resumed run left its lock", tc.name)
		}
	}
}

// TestSignalDuringLoading: Ctrl-C or SIGTERM while the data loads ends the
// program within a second, with status 130 and one line on stderr.
func TestSignalDuringLoading(t *testing.T) {
	bin := sincereBinary(t)
	cfg := filepath.Join(t.TempDir(), "slow.yaml")
	// 6000 synthetic images of 256 x 256 take many seconds to generate.
	if err := os.WriteFile(cfg, []byte("data: {dataset: 'synthetic:1x256x256'}\ntrain: {device: cpu}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		cmd := exec.Command(bin, "pretrain", "--config", cfg, "--out", t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		sent := time.Now()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 130 {
				t.Errorf("%v: exit %v, stderr %q", sig, err, stderr.String())
			}
			if took := time.Since(sent); took > 2*time.Second {
				t.Errorf("%v: took %v to stop", sig, took)
			}
			if s := strings.TrimSpace(stderr.String()); strings.Count(s, "\n") != 0 || !strings.Contains(s, "stopped") {
				t.Errorf("%v: stderr %q", sig, s)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: still running 15 s after the signal", sig)
		}
	}
}
