package slurm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := []Resources{
		{},
		{Partition: "gpu-a100", Account: "lab_1", Time: "1-00:00:00", AggregateTime: "30", CPUsPerTask: 8, Mem: "32G",
			Gres: "gpu:a100:1", MaxParallel: 4, Extra: []string{"--qos=long", "-C a100"}, Setup: []string{"module load cuda/12.4"}},
		{Time: "4:00:00"}, {Time: "10:00"}, {Time: "2-12"}, {Time: "infinite"}, {Mem: "16000"},
	}
	for _, r := range good {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	bad := []struct {
		r    Resources
		want string
	}{
		{Resources{Partition: "gpu\n#SBATCH --x"}, "slurm.partition"},
		{Resources{Account: "a b"}, "slurm.account"},
		{Resources{Time: "1h"}, "slurm.time"},
		{Resources{AggregateTime: "soon"}, "slurm.aggregate_time"},
		{Resources{CPUsPerTask: -1}, "slurm.cpus_per_task"},
		{Resources{Mem: "16 GB"}, "slurm.mem"},
		{Resources{Gres: "gpu:1; rm -rf /"}, "slurm.gres"},
		{Resources{MaxParallel: -2}, "slurm.max_parallel"},
		{Resources{Extra: []string{"qos=long"}}, "slurm.extra"},
		{Resources{Extra: []string{"--qos=long\necho hi"}}, "slurm.extra"},
		{Resources{Setup: []string{"a\nb"}}, "slurm.setup"},
	}
	for _, c := range bad {
		if err := c.r.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.r, err, c.want)
		}
	}
}

func TestArray(t *testing.T) {
	j := &Job{Tasks: 6}
	cases := []struct {
		indices []int
		cap     int
		want    string
	}{
		{nil, 0, "0-5"},
		{nil, 2, "0-5%2"},
		{[]int{1, 3, 4, 5}, 0, "1,3-5"},
		{[]int{0, 2}, 3, "0,2%3"},
		{[]int{4}, 0, "4"},
	}
	for _, c := range cases {
		j.MaxParallel = c.cap
		if got := j.Array(c.indices); got != c.want {
			t.Errorf("Array(%v) with cap %d = %q, want %q", c.indices, c.cap, got, c.want)
		}
	}
}

// testJob is a job with values that need quoting.
func testJob(t *testing.T) *Job {
	dir := t.TempDir()
	return &Job{Name: "tiny", Binary: "/opt/sincere/bin/sincere", Config: "/home/me/my configs/tiny.yaml", Out: dir,
		Sets: []string{"train.epochs=1", "name=it's"}, Env: map[string]string{"SINCERE_TRAIN_LR": "0.05", "SINCERE_DATA_ROOT": "/data/with space"},
		Tasks: 4, Version: "v1",
		Resources: Resources{Partition: "gpu", Time: "2:00:00", CPUsPerTask: 4, Mem: "8G", Gres: "gpu:1", MaxParallel: 2,
			Extra: []string{"--qos=long"}, Setup: []string{"module load cuda"}}}
}

func TestScripts(t *testing.T) {
	j := testJob(t)
	tasks, agg := j.TasksScript(), j.AggregateScript()
	logs := filepath.Join(j.Out, "tiny", "slurm", "logs")
	for _, want := range []string{
		"#SBATCH --job-name=sincere-tiny\n",
		"#SBATCH --array=0-3%2\n",
		"#SBATCH --output=" + logs + "/task-%A_%a.out\n",
		"#SBATCH --requeue\n",
		"#SBATCH --partition=gpu\n", "#SBATCH --time=2:00:00\n", "#SBATCH --cpus-per-task=4\n", "#SBATCH --mem=8G\n",
		"#SBATCH --gres=gpu:1\n", "#SBATCH --qos=long\n",
		"export SINCERE_DATA_ROOT='/data/with space'\nexport SINCERE_TRAIN_LR=0.05\n",
		"module load cuda\n",
		`exec /opt/sincere/bin/sincere compare --config '/home/me/my configs/tiny.yaml' --out ` + j.Out +
			` --set train.epochs=1 --set 'name=it'\''s' --task "$SLURM_ARRAY_TASK_ID" --wait-lock` + "\n",
	} {
		if !strings.Contains(tasks, want) {
			t.Errorf("tasks.sbatch lacks %q:\n%s", want, tasks)
		}
	}
	for _, want := range []string{
		"#SBATCH --job-name=sincere-tiny-aggregate\n",
		"#SBATCH --output=" + logs + "/aggregate-%j.out\n",
		"#SBATCH --time=2:00:00\n", "#SBATCH --qos=long\n",
		" --aggregate\n",
	} {
		if !strings.Contains(agg, want) {
			t.Errorf("aggregate.sbatch lacks %q:\n%s", want, agg)
		}
	}
	for _, not := range []string{"--gres", "--array", "--task"} {
		if strings.Contains(agg, not) {
			t.Errorf("aggregate.sbatch holds %s", not)
		}
	}
	j.AggregateTime = "20:00"
	if agg := j.AggregateScript(); !strings.Contains(agg, "#SBATCH --time=20:00\n") {
		t.Errorf("aggregate_time not used:\n%s", agg)
	}
	// The #SBATCH lines come before the first command, as sbatch wants.
	for _, s := range []string{tasks, agg} {
		lines := strings.Split(s, "\n")
		seenCmd := false
		for _, l := range lines {
			if strings.HasPrefix(l, "#SBATCH") && seenCmd {
				t.Errorf("#SBATCH after a command: %q", l)
			}
			if l != "" && !strings.HasPrefix(l, "#") {
				seenCmd = true
			}
		}
	}
}

func TestWrite(t *testing.T) {
	j := testJob(t)
	tasks, agg, err := j.Write()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tasks, agg} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s: %v %v", p, err, st)
		}
		if bash, err := exec.LookPath("bash"); err == nil {
			if out, err := exec.Command(bash, "-n", p).CombinedOutput(); err != nil {
				t.Errorf("bash -n %s: %v %s", p, err, out)
			}
		}
	}
	if st, err := os.Stat(filepath.Join(j.Out, "tiny", "slurm", "logs")); err != nil || !st.IsDir() {
		t.Error("no logs folder")
	}
	for _, mod := range []func(*Job){
		func(j *Job) { j.Binary = "sincere" },
		func(j *Job) { j.Config = "configs/tiny.yaml" },
		func(j *Job) { j.Out = "runs" },
		func(j *Job) { j.Tasks = 0 },
		func(j *Job) { j.Gres = "gpu 1" },
	} {
		j := testJob(t)
		mod(j)
		if _, _, err := j.Write(); err == nil {
			t.Errorf("%+v written", j)
		}
		if _, err := os.Stat(filepath.Join(j.Out, "tiny")); err == nil && filepath.IsAbs(j.Out) {
			t.Errorf("a refused job wrote into %s", j.Out)
		}
	}
}

// fakeSbatch puts an sbatch on PATH that logs its arguments and answers
// as --parsable does; it returns the log's path.
func fakeSbatch(t *testing.T, fail string) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$@" >> "` + log + `"
case "$*" in *` + fail + `*) echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1;; esac
n=$(wc -l < "` + log + `")
echo "$((100 + n));cluster"
`
	if err := os.WriteFile(filepath.Join(dir, "sbatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

func TestSubmit(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	j := testJob(t)
	cases := []struct {
		indices        []int
		calls          []string
		tasks, aggJob  string
		array, failing string
	}{
		{nil, []string{"--parsable --array=0-3%2 T", "--parsable --dependency=afterok:101 --kill-on-invalid-dep=yes A"}, "101", "102", "0-3%2", "never"},
		{[]int{1, 3}, []string{"--parsable --array=1,3%2 T", "--parsable --dependency=afterok:101 --kill-on-invalid-dep=yes A"}, "101", "102", "1,3%2", "never"},
		{[]int{}, []string{"--parsable A"}, "", "101", "", "never"},
	}
	for _, c := range cases {
		log := fakeSbatch(t, c.failing)
		s, err := Submit(context.Background(), j, "T", "A", c.indices)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(log)
		if got := strings.Split(strings.TrimSpace(string(b)), "\n"); strings.Join(got, "|") != strings.Join(c.calls, "|") {
			t.Errorf("%v: sbatch calls %q, want %q", c.indices, got, c.calls)
		}
		if s.TasksJob != c.tasks || s.AggregateJob != c.aggJob || s.Array != c.array {
			t.Errorf("%v: submitted %+v", c.indices, s)
		}
	}
	fakeSbatch(t, "A")
	if _, err := Submit(context.Background(), j, "T", "A", nil); err == nil ||
		!strings.Contains(err.Error(), "Invalid partition name") || !strings.Contains(err.Error(), "submitted as job 101") {
		t.Errorf("a failing aggregate submission: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := Submit(context.Background(), j, "T", "A", nil); err == nil || !strings.Contains(err.Error(), "sbatch not found") {
		t.Errorf("without sbatch: %v", err)
	}
}
