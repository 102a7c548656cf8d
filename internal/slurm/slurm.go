// Package slurm writes and submits the Slurm batch scripts of a
// comparison: a job array with one task per (method, seed), each running
// `sincere compare --task $SLURM_ARRAY_TASK_ID`, and an aggregation job
// that runs `sincere compare --aggregate` once every task has succeeded.
package slurm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/sincere-ml/sincere/internal/atomicfile"
)

// Resources are what the jobs ask Slurm for: the `slurm:` section of a
// configuration, or flags. Empty values are left to the cluster's
// defaults.
type Resources struct {
	// Partition and Account are sbatch's --partition and --account.
	Partition string `yaml:"partition" mapstructure:"partition"`
	Account   string `yaml:"account" mapstructure:"account"`
	// Time is each task's time limit (sbatch --time: "MM", "HH:MM:SS",
	// "D-HH:MM", ...); AggregateTime the aggregation's (default: Time).
	Time          string `yaml:"time" mapstructure:"time"`
	AggregateTime string `yaml:"aggregate_time" mapstructure:"aggregate_time"`
	// CPUsPerTask is sbatch's --cpus-per-task (0: the cluster's default,
	// usually 1); training uses every CPU it is given.
	CPUsPerTask int `yaml:"cpus_per_task" mapstructure:"cpus_per_task"`
	// Mem is sbatch's --mem, memory per node: "8G", "16000M".
	Mem string `yaml:"mem" mapstructure:"mem"`
	// Gres is each task's generic resources, e.g. "gpu:1"; the
	// aggregation asks for none.
	Gres string `yaml:"gres" mapstructure:"gres"`
	// MaxParallel caps the tasks running at once (--array=...%K); 0: no
	// cap.
	MaxParallel int `yaml:"max_parallel" mapstructure:"max_parallel"`
	// Extra are more sbatch options for both jobs, one per entry, e.g.
	// "--qos=long" or "--constraint=a100".
	Extra []string `yaml:"extra" mapstructure:"extra"`
	// Setup are shell lines run before sincere in both jobs, e.g.
	// "module load cuda/12.4".
	Setup []string `yaml:"setup" mapstructure:"setup"`
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_.,+-]*$`)
	timePattern = regexp.MustCompile(`^(|infinite|unlimited|UNLIMITED|INFINITE|\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+)$`)
	memPattern  = regexp.MustCompile(`^(|\d+[KMGT]?)$`)
	gresPattern = regexp.MustCompile(`^[A-Za-z0-9_:.,=+-]*$`)
	// plainWord needs no quotes in a shell.
	plainWord = regexp.MustCompile(`^[A-Za-z0-9_./:=,+@%-]+$`)
)

// Validate reports the first value sbatch would refuse or that could
// break a script, naming its key (slurm.<key>).
func (r Resources) Validate() error {
	switch {
	case !namePattern.MatchString(r.Partition):
		return fmt.Errorf("slurm.partition: %q is not a partition name", r.Partition)
	case !namePattern.MatchString(r.Account):
		return fmt.Errorf("slurm.account: %q is not an account name", r.Account)
	case !timePattern.MatchString(r.Time):
		return fmt.Errorf("slurm.time: %q is not a Slurm time (MM, HH:MM:SS, D-HH, D-HH:MM:SS)", r.Time)
	case !timePattern.MatchString(r.AggregateTime):
		return fmt.Errorf("slurm.aggregate_time: %q is not a Slurm time (MM, HH:MM:SS, D-HH, D-HH:MM:SS)", r.AggregateTime)
	case r.CPUsPerTask < 0 || r.CPUsPerTask > 4096:
		return fmt.Errorf("slurm.cpus_per_task: must be 0 (the cluster's default) to 4096, got %d", r.CPUsPerTask)
	case !memPattern.MatchString(r.Mem):
		return fmt.Errorf("slurm.mem: %q is not a memory size (a number, optionally with K, M, G or T)", r.Mem)
	case !gresPattern.MatchString(r.Gres):
		return fmt.Errorf("slurm.gres: %q is not a gres specification (e.g. gpu:1)", r.Gres)
	case r.MaxParallel < 0:
		return fmt.Errorf("slurm.max_parallel: must be >= 0 (0: no cap), got %d", r.MaxParallel)
	}
	for _, e := range r.Extra {
		if !strings.HasPrefix(e, "-") || strings.ContainsAny(e, "\n\r") {
			return fmt.Errorf("slurm.extra: %q is not one sbatch option (want e.g. --qos=long)", e)
		}
	}
	for _, s := range r.Setup {
		if strings.ContainsAny(s, "\n\r") {
			return fmt.Errorf("slurm.setup: %q holds a line break: give one line per entry", s)
		}
	}
	return nil
}

// Job is what the scripts of one comparison run.
type Job struct {
	// Name is the comparison's name (the config's); jobs are named
	// sincere-<Name> and sincere-<Name>-aggregate.
	Name string
	// Binary, Config and Out are absolute paths: the sincere binary, the
	// configuration and the output folder.
	Binary, Config, Out string
	// Sets are the --set overrides, passed on to every task.
	Sets []string
	// Env are environment variables that change the configuration
	// (SINCERE_*), written into the scripts so that they run as they
	// were planned whatever the submitting shell holds.
	Env map[string]string
	// Tasks is the number of tasks: methods x seeds.
	Tasks int
	// Version is the sincere version that wrote the scripts.
	Version string
	Resources
}

// Files a Job writes into Dir (OUT/<name>/slurm).
const (
	TasksScript     = "tasks.sbatch"
	AggregateScript = "aggregate.sbatch"
	LogsDir         = "logs"
)

// Dir is the folder of a comparison's Slurm scripts.
func Dir(out, name string) string { return filepath.Join(out, name, "slurm") }

// Logs is the folder of the jobs' output files, Dir(Out, Name)/logs.
func (j *Job) Logs() string { return filepath.Join(Dir(j.Out, j.Name), LogsDir) }

// check validates the job before anything is written.
func (j *Job) check() error {
	for what, p := range map[string]string{"the sincere binary": j.Binary, "the configuration": j.Config, "the output folder": j.Out} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("slurm: %s must be an absolute path, got %q", what, p)
		}
	}
	if j.Tasks < 1 {
		return errors.New("slurm: a comparison without tasks")
	}
	return j.Resources.Validate()
}

// Quote quotes s for a POSIX shell where it needs it.
func Quote(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Command is the job's sincere compare command line (binary,
// configuration, output folder and --set overrides) followed by mode,
// quoted for a POSIX shell; a mode argument that starts with "$ is left for
// the shell to expand.
func (j *Job) Command(mode ...string) string {
	args := []string{j.Binary, "compare", "--config", j.Config, "--out", j.Out}
	for _, s := range j.Sets {
		args = append(args, "--set", s)
	}
	args = append(args, mode...)
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
		if strings.HasPrefix(a, `"$`) { // a variable the shell expands
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// header is the #SBATCH lines both jobs share, then their own.
func (j *Job) header(b *strings.Builder, time, gres string, own ...string) {
	for _, o := range own {
		fmt.Fprintf(b, "#SBATCH %s\n", o)
	}
	opt := func(name, v string) {
		if v != "" {
			fmt.Fprintf(b, "#SBATCH --%s=%s\n", name, v)
		}
	}
	opt("partition", j.Partition)
	opt("account", j.Account)
	opt("time", time)
	if j.CPUsPerTask > 0 {
		opt("cpus-per-task", strconv.Itoa(j.CPUsPerTask))
	}
	opt("mem", j.Mem)
	opt("gres", gres)
	for _, e := range j.Extra {
		fmt.Fprintf(b, "#SBATCH %s\n", e)
	}
}

// body is the shell part both jobs share: strict mode, the environment,
// the setup lines; then exec of the command, so that the signals Slurm
// sends (SIGTERM at a time limit or preemption) reach sincere itself.
func (j *Job) body(b *strings.Builder, cmd string) {
	b.WriteString("set -euo pipefail\n")
	keys := make([]string, 0, len(j.Env))
	for k := range j.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "export %s=%s\n", k, Quote(j.Env[k]))
	}
	for _, s := range j.Setup {
		b.WriteString(s + "\n")
	}
	b.WriteString(`echo "sincere: $(date -Is) on $(hostname), job ${SLURM_JOB_ID:-?}` + "\"\n")
	b.WriteString("exec " + cmd + "\n")
}

// Array is the --array value for the given task indices (all when nil):
// ranges joined by commas, with %MaxParallel.
func (j *Job) Array(indices []int) string {
	if indices == nil {
		indices = make([]int, j.Tasks)
		for i := range indices {
			indices[i] = i
		}
	}
	var parts []string
	for i := 0; i < len(indices); {
		k := i
		for k+1 < len(indices) && indices[k+1] == indices[k]+1 {
			k++
		}
		if k == i {
			parts = append(parts, strconv.Itoa(indices[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", indices[i], indices[k]))
		}
		i = k + 1
	}
	s := strings.Join(parts, ",")
	if j.MaxParallel > 0 {
		s += "%" + strconv.Itoa(j.MaxParallel)
	}
	return s
}

// TasksScript returns tasks.sbatch: the job array, one task per index.
func (j *Job) TasksScript() string {
	var b strings.Builder
	logs := j.Logs()
	fmt.Fprintf(&b, "#!/bin/bash\n# Written by sincere %s (sincere slurm): the %d tasks of the comparison %q,\n", j.Version, j.Tasks, j.Name)
	b.WriteString("# one array index per (method, seed): `sincere compare --plan` lists them.\n")
	b.WriteString("# A task pretrains its run (resuming a checkpoint) and probes it; SIGTERM (a time\n")
	b.WriteString("# limit, preemption, scancel) makes it write a checkpoint first, and a requeued\n")
	b.WriteString("# or resubmitted task resumes from there.\n")
	j.header(&b, j.Time, j.Gres,
		"--job-name="+Quote("sincere-"+j.Name),
		"--array="+j.Array(nil),
		"--output="+filepath.Join(logs, "task-%A_%a.out"),
		"--open-mode=append",
		"--requeue")
	j.body(&b, j.Command("--task", `"$SLURM_ARRAY_TASK_ID"`, "--wait-lock"))
	return b.String()
}

// AggregateScript returns aggregate.sbatch: the tables and figures, once
// every task has succeeded (submitted with --dependency=afterok).
func (j *Job) AggregateScript() string {
	var b strings.Builder
	logs := j.Logs()
	t := j.AggregateTime
	if t == "" {
		t = j.Time
	}
	fmt.Fprintf(&b, "#!/bin/bash\n# Written by sincere %s (sincere slurm): the aggregation of the comparison %q,\n", j.Version, j.Name)
	b.WriteString("# run after every task of tasks.sbatch succeeded: compare.json, compare.csv,\n")
	fmt.Fprintf(&b, "# compare.md and the figures into %s.\n", filepath.Join(j.Out, j.Name))
	j.header(&b, t, "",
		"--job-name="+Quote("sincere-"+j.Name+"-aggregate"),
		"--output="+filepath.Join(logs, "aggregate-%j.out"),
		"--open-mode=append")
	j.body(&b, j.Command("--aggregate"))
	return b.String()
}

// Write writes tasks.sbatch and aggregate.sbatch into Dir(Out, Name)
// (with its logs folder) and returns their paths.
func (j *Job) Write() (tasks, aggregate string, err error) {
	if err := j.check(); err != nil {
		return "", "", err
	}
	dir := Dir(j.Out, j.Name)
	if err := os.MkdirAll(j.Logs(), 0o755); err != nil {
		return "", "", err
	}
	tasks, aggregate = filepath.Join(dir, TasksScript), filepath.Join(dir, AggregateScript)
	for path, text := range map[string]string{tasks: j.TasksScript(), aggregate: j.AggregateScript()} {
		if err := atomicfile.Write(path, []byte(text)); err != nil {
			return "", "", err
		}
		if err := os.Chmod(path, 0o755); err != nil {
			return "", "", err
		}
	}
	return tasks, aggregate, nil
}
