package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// slurmConfig writes a tiny comparison on synthetic data: methods x seeds
// of one pretraining run each.
func slurmConfig(t *testing.T, dir, name, methods, seeds string, epochs int, extra string) string {
	t.Helper()
	p := filepath.Join(dir, name+".yaml")
	body := fmt.Sprintf(`name: %s
methods: %s
seeds: %s
data: {dataset: synthetic, subset: 600, workers: 1}
model: {arch: cnn, width: 0.25, embedding: 16}
train: {epochs: %d, batch_size: 40, lr: 0.05, warmup_steps: 3, checkpoint_every: 5, device: cpu, workers: 1}
probe: {datasets: [], train_subset: 300, linear_epochs: 2, bootstrap: 50}
%s`, name, methods, seeds, epochs, extra)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeSbatch puts an sbatch on PATH that logs its arguments and answers
// as --parsable does; it returns the log's path.
func fakeSbatch(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$@\" >> " + log + "\nn=$(wc -l < " + log + ")\necho \"$((40 + n))\"\n"
	if err := os.WriteFile(filepath.Join(dir, "sbatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

// TestSlurmCommand writes and submits (to a stand-in sbatch) the scripts
// of a comparison: resources from the config, overridden by flags;
// absolute paths; the commands to follow the jobs; and errors.
func TestSlurmCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := slurmConfig(t, dir, "tiny", "[supcon, sincere]", "[1, 2]", 1,
		"slurm: {partition: cpu, time: \"10:00\", max_parallel: 1, setup: [\"echo ready\"]}\n")
	calls := fakeSbatch(t)
	t.Chdir(dir)
	code, stdout, stderr := sincere("slurm", "--config", "tiny.yaml", "--out", "runs", "--partition", "gpu", "--gres", "gpu:1", "--set", "train.lr=0.04", "--submit")
	if code != 0 {
		t.Fatal(stderr)
	}
	out := filepath.Join(dir, "runs")
	sdir := filepath.Join(out, "tiny", "slurm")
	for _, want := range []string{
		"wrote " + filepath.Join(sdir, "tasks.sbatch") + ": 4 tasks (2 methods x 2 seeds)",
		"submitted the tasks as job 41 (array 0-3%1)",
		"submitted the aggregation as job 42: it starts once every task has succeeded",
		"squeue -j 41,42", "sacct -j 41,42", "--plan", "scancel 41 42",
		"logs:     " + sdir + "/logs/",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	b, _ := os.ReadFile(calls)
	if want := "--parsable --array=0-3%1 " + filepath.Join(sdir, "tasks.sbatch") + "\n--parsable --dependency=afterok:41 --kill-on-invalid-dep=yes " +
		filepath.Join(sdir, "aggregate.sbatch") + "\n"; string(b) != want {
		t.Errorf("sbatch calls:\n%s\nwant\n%s", b, want)
	}
	tasks, _ := os.ReadFile(filepath.Join(sdir, "tasks.sbatch"))
	for _, want := range []string{"#SBATCH --partition=gpu\n", "#SBATCH --time=10:00\n", "#SBATCH --gres=gpu:1\n", "echo ready\n",
		"--config " + cfg + " --out " + out + " --set train.lr=0.04 --task \"$SLURM_ARRAY_TASK_ID\" --wait-lock"} {
		if !strings.Contains(string(tasks), want) {
			t.Errorf("tasks.sbatch lacks %q:\n%s", want, tasks)
		}
	}
	// Without --submit: the scripts and how to submit them by hand.
	os.Remove(calls)
	code, stdout, _ = sincere("slurm", "--config", "tiny.yaml", "--out", "runs")
	if code != 0 || !strings.Contains(stdout, "sbatch --dependency=afterok:$jid") {
		t.Errorf("without --submit: %d\n%s", code, stdout)
	}
	if _, err := os.Stat(calls); err == nil {
		t.Error("sbatch ran without --submit")
	}
	// --binary names the binary the jobs run (the GPU build, which cannot
	// start on a login node without a GPU).
	gpuBin := filepath.Join(dir, "sincere-cuda")
	os.WriteFile(gpuBin, []byte("#!/bin/sh\n"), 0o755)
	if code, _, stderr := sincere("slurm", "--config", "tiny.yaml", "--out", "runs", "--binary", "sincere-cuda"); code != 0 {
		t.Fatal(stderr)
	}
	tasks, _ = os.ReadFile(filepath.Join(sdir, "tasks.sbatch"))
	if !strings.Contains(string(tasks), gpuBin+" compare --config") {
		t.Errorf("tasks.sbatch does not run --binary %s:\n%s", gpuBin, tasks)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("slurm: {partitoin: gpu}\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--config", bad}, "unknown key slurm.partitoin"},
		{[]string{"--config", "tiny.yaml", "--time", "1h"}, "slurm.time"},
		{[]string{"--config", "tiny.yaml", "--sbatch", "qos=long"}, "slurm.extra"},
		{[]string{"--config", "tiny.yaml", "--set", "slurm.cpus_per_task=-1"}, "slurm.cpus_per_task"},
		{[]string{"--config", "tiny.yaml", "--binary", "tiny.yaml"}, "--binary"},
		{[]string{"--config", "tiny.yaml", "--binary", "missing"}, "--binary"},
	}
	for _, c := range cases {
		code, _, stderr := sincere(append([]string{"slurm"}, c.args...)...)
		if code == 0 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q should be one line naming %q", c.args, code, stderr, c.want)
		}
	}
}

// slurmJobState returns a job's state and exit code from scontrol.
func slurmJobState(t *testing.T, id string) (state, exit string) {
	t.Helper()
	b, err := exec.Command("scontrol", "show", "job", "-o", id).CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol show job %s: %v %s", id, err, b)
	}
	if m := regexp.MustCompile(`JobState=(\S+)`).FindSubmatch(b); m != nil {
		state = string(m[1])
	}
	if m := regexp.MustCompile(`ExitCode=(\S+)`).FindSubmatch(b); m != nil {
		exit = string(m[1])
	}
	return state, exit
}

// waitSlurm waits until a job reaches one of the given states (failing
// on a final state not among them) and returns it.
func waitSlurm(t *testing.T, id string, logs string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		state, exit := slurmJobState(t, id)
		for _, w := range want {
			if state == w {
				return state
			}
		}
		switch state {
		case "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED":
			t.Fatalf("job %s ended %s (exit %s), want %v; logs:\n%s", id, state, exit, want, slurmLogs(logs))
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 5 minutes; logs:\n%s", id, state, slurmLogs(logs))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// slurmLogs returns the jobs' log files and the last lines of the daemons'
// logs (beside $SLURM_CONF, as scripts/slurm-local.sh keeps them), for a
// failure message: a job that fails before its script runs says why only
// there.
func slurmLogs(dir string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "*.out"))
	for _, f := range files {
		text, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", f, text)
	}
	if conf := os.Getenv("SLURM_CONF"); conf != "" {
		for _, name := range []string{"slurmctld.log", "slurmd.log"} {
			f := filepath.Join(filepath.Dir(conf), "log", name)
			text, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			lines := strings.Split(strings.TrimRight(string(text), "\n"), "\n")
			lines = lines[max(0, len(lines)-30):]
			fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", f, len(lines), strings.Join(lines, "\n"))
		}
	}
	return b.String()
}

// jobIDs reads the job ids sincere slurm --submit printed.
func jobIDs(t *testing.T, stdout string) (tasks, aggregate string) {
	t.Helper()
	if m := regexp.MustCompile(`submitted the tasks as job (\S+) `).FindStringSubmatch(stdout); m != nil {
		tasks = m[1]
	}
	m := regexp.MustCompile(`submitted the aggregation as job (\S+?):?\s`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no aggregation job id in:\n%s", stdout)
	}
	return tasks, m[1]
}

// TestSlurmCluster runs comparisons through a real Slurm: the cluster of
// scripts/slurm-local.sh, started by .ci/run, which sets
// SINCERE_SLURM_TEST=1 and SLURM_CONF. First a 2 x 2 comparison submitted
// with sincere slurm --submit must give the compare.csv of a local compare,
// byte for byte. Then an array task is sent SIGTERM mid-run (as at a time
// limit or preemption): it must leave a checkpoint and no lock; requeued,
// it resumes and ends with the model of an uninterrupted local run; and
// running sincere slurm --submit again submits only the aggregation.
func TestSlurmCluster(t *testing.T) {
	if os.Getenv("SINCERE_SLURM_TEST") == "" {
		t.Skip("needs a Slurm cluster: SINCERE_SLURM_TEST=1 with SLURM_CONF set (eval \"$(scripts/slurm-local.sh start)\"; .ci/run does it)")
	}
	for _, c := range []string{"sbatch", "scontrol", "scancel"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("SINCERE_SLURM_TEST is set but %s is missing (scripts/slurm-local.sh start installs Slurm)", c)
		}
	}
	bin := sincereBinary(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // the jobs may run as another user
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Run(); err != nil {
			t.Fatalf("sincere %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	local, onSlurm := filepath.Join(dir, "local"), filepath.Join(dir, "slurm")

	// 1. The whole comparison on Slurm, against a local one.
	start := time.Now()
	cfg := slurmConfig(t, dir, "tiny", "[supcon, sincere]", "[1, 2]", 1, "slurm: {max_parallel: 2, cpus_per_task: 1, time: \"10:00\"}\n")
	run("compare", "--config", cfg, "--out", local, "-q")
	stdout := run("slurm", "--config", cfg, "--out", onSlurm, "--submit")
	t.Logf("sincere slurm --config %s --out %s --submit\n%s", cfg, onSlurm, stdout)
	_, agg := jobIDs(t, stdout)
	logs := filepath.Join(onSlurm, "tiny", "slurm", "logs")
	waitSlurm(t, agg, logs, "COMPLETED")
	want, err := os.ReadFile(filepath.Join(local, "tiny", "compare.csv"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(onSlurm, "tiny", "compare.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("compare.csv from Slurm differs from a local compare's:\n%s\nlocal:\n%s", got, want)
	}
	t.Logf("2 x 2 comparison on Slurm: %v; compare.csv byte-identical to the local one (%d bytes)", time.Since(start).Round(time.Second), len(got))

	// 2. A task stopped by SIGTERM mid-run, then requeued.
	start = time.Now()
	cfg = slurmConfig(t, dir, "long", "[sincere]", "[1]", 10, "slurm: {cpus_per_task: 1}\n")
	run("compare", "--config", cfg, "--out", local, "--task", "0", "-q")
	run("compare", "--config", cfg, "--out", local, "--aggregate", "-q")
	wantModel, err := os.ReadFile(filepath.Join(local, "long", "sincere-seed1", "model.gob"))
	if err != nil {
		t.Fatal(err)
	}
	stdout = run("slurm", "--config", cfg, "--out", onSlurm, "--submit")
	tasks, agg := jobIDs(t, stdout)
	task := tasks + "_0"
	logs = filepath.Join(onSlurm, "long", "slurm", "logs")
	runDir := filepath.Join(onSlurm, "long", "sincere-seed1")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(runDir, "checkpoint.gob")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after 3 minutes; logs:\n%s", slurmLogs(logs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, err := exec.Command("scancel", "--signal=TERM", "--full", task).CombinedOutput(); err != nil {
		t.Fatalf("scancel --signal=TERM %s: %v %s", task, err, b)
	}
	waitSlurm(t, task, logs, "FAILED")
	if _, exit := slurmJobState(t, task); exit != "130:0" {
		t.Errorf("the stopped task's exit code is %s, want 130:0", exit)
	}
	if _, err := os.Stat(filepath.Join(runDir, "model.gob")); err == nil {
		t.Fatal("the task finished before SIGTERM reached it; make the run longer")
	}
	for _, f := range []string{"checkpoint.gob", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
			t.Errorf("the stopped task left no %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, "lock")); err == nil {
		t.Error("the stopped task left its lock")
	}
	// A requeued job may not start until Slurm's credential for its last
	// run has expired (EligibleTime is its end plus CredExpire+1, two
	// minutes): slurmd refuses a launch whose credential is as old as the
	// revocation, to the second, and the job then fails with exit 1 before
	// its script runs. Start it a few seconds after the end instead.
	for _, args := range [][]string{{"requeue", task}, {"update", "jobid=" + task, "StartTime=now+5"}} {
		if b, err := exec.Command("scontrol", args...).CombinedOutput(); err != nil {
			t.Fatalf("scontrol %s: %v %s", strings.Join(args, " "), err, b)
		}
	}
	waitSlurm(t, task, logs, "COMPLETED")
	gotModel, err := os.ReadFile(filepath.Join(runDir, "model.gob"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotModel, wantModel) {
		t.Error("the requeued task's model differs from an uninterrupted run's")
	}
	taskLog, _ := os.ReadFile(filepath.Join(logs, "task-"+task+".out"))
	if !strings.Contains(string(taskLog), "interrupted at epoch") || !strings.Contains(string(taskLog), "resuming at epoch") {
		t.Errorf("the task's log does not show the interruption and the resumption:\n%s", taskLog)
	}
	// The aggregation waited on a task that failed: Slurm cancelled it.
	// Submitting again runs only the aggregation.
	waitSlurm(t, agg, logs, "CANCELLED")
	stdout = run("slurm", "--config", cfg, "--out", onSlurm, "--submit")
	t.Logf("resubmitted:\n%s", stdout)
	if !strings.Contains(stdout, "every task is done already") {
		t.Errorf("resubmission:\n%s", stdout)
	}
	_, agg = jobIDs(t, stdout)
	waitSlurm(t, agg, logs, "COMPLETED")
	want, _ = os.ReadFile(filepath.Join(local, "long", "compare.csv"))
	got, _ = os.ReadFile(filepath.Join(onSlurm, "long", "compare.csv"))
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("compare.csv after the requeue differs from the local one")
	}
	t.Logf("SIGTERM, requeue and resubmission: %v; the model and compare.csv are the local run's", time.Since(start).Round(time.Second))
}
