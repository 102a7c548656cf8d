package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/experiment"
	"github.com/sincere-ml/sincere/internal/slurm"
)

func newSlurmCmd(e *env) *cobra.Command {
	var (
		cfgPath, out string
		sets         []string
		submit       bool
		binary       string
		res          slurm.Resources
	)
	cmd := &cobra.Command{
		Use:   "slurm --config C.yaml [--out DIR] [--submit] [resource flags]",
		Short: "Run a comparison on a Slurm cluster: a job array of its tasks, then the aggregation",
		Long: `Write the Slurm batch scripts of a comparison into OUT/<config name>/slurm/, and
with --submit hand them to Slurm:

  tasks.sbatch      a job array, one index per (method, seed) (the tasks of
                    sincere compare --plan); index I runs
                    sincere compare --task I --wait-lock: pretrain (resuming a
                    checkpoint), then probe
  aggregate.sbatch  sincere compare --aggregate: compare.json, compare.csv,
                    compare.md and the figures, as a plain compare writes them
  logs/             task-<job>_<index>.out and aggregate-<job>.out

--submit runs sbatch --parsable for the tasks not done yet, then for the
aggregation with --dependency=afterok on them (Slurm cancels it if a task
fails), and prints both job ids and the commands to watch them. Paths in the
scripts are absolute and the binary is this one unless --binary names
another (the GPU build, bin/sincere-cuda, cannot start on a login node
without an NVIDIA driver: write its jobs with bin/sincere --binary
bin/sincere-cuda), so OUT must be on a file system the compute nodes share
(run directories are locked across machines).

Resources come from the config's slurm: section (configs/README.md), and the
flags below override it. A task stopped by Slurm (time limit, preemption,
scancel) gets SIGTERM and writes a checkpoint; to finish the comparison, run
the same command again: done tasks are skipped, partial ones resume.`,
		Example: `  sincere slurm --config configs/quick.yaml --out /shared/runs --submit
  sincere slurm --config configs/cifar10-resnet18.yaml --out /shared/runs --set train.device=cuda \
      --binary bin/sincere-cuda --partition gpu --gres gpu:1 --cpus-per-task 8 --mem 32G --time 1-00:00:00 --submit
  sincere slurm --config configs/quick.yaml --out /shared/runs   # write the scripts only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := experiment.Load(cfgPath, "", sets)
			if err != nil {
				return err
			}
			flagResources(cmd, &cfg.Slurm, res)
			if err := cfg.Slurm.Validate(); err != nil {
				return err
			}
			job, err := slurmJob(cfgPath, out, binary, sets, cfg)
			if err != nil {
				return err
			}
			tasks, err := experiment.Plan(job.Config, experiment.CompareOptions{Out: job.Out, Sets: sets})
			if err != nil {
				return err
			}
			pending := []int{}
			var changed, running []string
			for _, t := range tasks {
				switch t.State {
				case experiment.TaskDone:
					continue
				case experiment.TaskChanged:
					changed = append(changed, fmt.Sprintf("task %d (%s)", t.Index, t.Dir))
				}
				if t.Holder != nil {
					running = append(running, fmt.Sprintf("task %d (%s)", t.Index, t.Detail))
				}
				pending = append(pending, t.Index)
			}
			if len(changed) > 0 {
				return fmt.Errorf("%s trained with other settings than %s: remove them, or choose another --out", strings.Join(changed, ", "), cfgPath)
			}
			tasksPath, aggPath, err := job.Write()
			if err != nil {
				return err
			}
			w := e.stdout
			fmt.Fprintf(w, "wrote %s: %s (%s x %s), one array index each\n", tasksPath,
				count(len(tasks), "task"), count(len(cfg.Methods), "method"), count(len(cfg.Seeds), "seed"))
			fmt.Fprintf(w, "wrote %s: the tables and figures once every task has succeeded\n", aggPath)
			if !submit {
				fmt.Fprintf(w, "submit them with --submit, or by hand:\n  jid=$(sbatch --parsable %s) && sbatch --dependency=afterok:$jid --kill-on-invalid-dep=yes %s\n", tasksPath, aggPath)
				return nil
			}
			for _, r := range running {
				e.logf("note: %s: its new array task waits for that process to finish (--wait-lock)", r)
			}
			s, err := slurm.Submit(cmd.Context(), job, tasksPath, aggPath, pending)
			if err != nil {
				return err
			}
			printSubmitted(e, job, s, len(tasks)-len(pending))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "experiment configuration (YAML); see configs/README.md")
	f.StringVar(&out, "out", "runs", "folder for the run directories and the comparison, shared by the compute nodes")
	f.StringArrayVar(&sets, "set", nil, "override a key for every run, e.g. --set train.epochs=1 (repeatable)")
	f.BoolVar(&submit, "submit", false, "submit the scripts with sbatch (else only write them)")
	f.StringVar(&binary, "binary", "", "the sincere binary the jobs run (default: this one), e.g. bin/sincere-cuda for GPU jobs")
	f.StringVar(&res.Partition, "partition", "", "partition of both jobs (slurm.partition)")
	f.StringVar(&res.Account, "account", "", "account to charge (slurm.account)")
	f.StringVar(&res.Time, "time", "", "time limit of each task, e.g. 4:00:00 or 1-00:00:00 (slurm.time)")
	f.StringVar(&res.AggregateTime, "aggregate-time", "", "time limit of the aggregation (slurm.aggregate_time; default: --time)")
	f.IntVar(&res.CPUsPerTask, "cpus-per-task", 0, "CPUs of each task; training uses all it gets (slurm.cpus_per_task)")
	f.StringVar(&res.Mem, "mem", "", "memory of each job, e.g. 16G (slurm.mem)")
	f.StringVar(&res.Gres, "gres", "", "generic resources of each task, e.g. gpu:1 (slurm.gres)")
	f.IntVar(&res.MaxParallel, "max-parallel", 0, "run at most this many tasks at once (slurm.max_parallel; 0: no cap)")
	f.StringArrayVar(&res.Extra, "sbatch", nil, "one more sbatch option for both jobs, e.g. --sbatch=--qos=long (repeatable; slurm.extra)")
	f.StringArrayVar(&res.Setup, "setup", nil, "a shell line to run before sincere, e.g. --setup 'module load cuda' (repeatable; slurm.setup)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// flagResources copies the resource flags that were given over the
// config's slurm: section.
func flagResources(cmd *cobra.Command, r *slurm.Resources, flags slurm.Resources) {
	set := cmd.Flags().Changed
	for name, apply := range map[string]func(){
		"partition":      func() { r.Partition = flags.Partition },
		"account":        func() { r.Account = flags.Account },
		"time":           func() { r.Time = flags.Time },
		"aggregate-time": func() { r.AggregateTime = flags.AggregateTime },
		"cpus-per-task":  func() { r.CPUsPerTask = flags.CPUsPerTask },
		"mem":            func() { r.Mem = flags.Mem },
		"gres":           func() { r.Gres = flags.Gres },
		"max-parallel":   func() { r.MaxParallel = flags.MaxParallel },
		"sbatch":         func() { r.Extra = flags.Extra },
		"setup":          func() { r.Setup = flags.Setup },
	} {
		if set(name) {
			apply()
		}
	}
}

// slurmJob describes the comparison's jobs: absolute paths, the binary
// (this one unless binary names another, which must be an executable
// file), and the SINCERE_* variables that shape the configuration now.
func slurmJob(cfgPath, out, binary string, sets []string, cfg experiment.Config) (*slurm.Job, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the path of this sincere binary: %w", err)
	}
	if binary != "" {
		if bin, err = filepath.Abs(binary); err != nil {
			return nil, fmt.Errorf("--binary: %w", err)
		}
		st, err := os.Stat(bin)
		if err != nil {
			return nil, fmt.Errorf("--binary: %w", err)
		}
		if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("--binary: %s is not an executable file", bin)
		}
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		return nil, fmt.Errorf("the path of the sincere binary: %w", err)
	}
	absCfg, err := filepath.Abs(cfgPath)
	if err != nil {
		return nil, err
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, experiment.EnvPrefix+"_") {
			env[k] = v
		}
	}
	return &slurm.Job{Name: cfg.Name, Binary: bin, Config: absCfg, Out: absOut, Sets: slices.Clone(sets), Env: env,
		Tasks: len(cfg.Methods) * len(cfg.Seeds), Version: version, Resources: cfg.Slurm}, nil
}

// printSubmitted tells what was submitted and how to follow it.
func printSubmitted(e *env, job *slurm.Job, s slurm.Submitted, done int) {
	w := e.stdout
	ids := s.AggregateJob
	if s.TasksJob != "" {
		ids = s.TasksJob + "," + s.AggregateJob
		note := ""
		if done > 0 {
			note = fmt.Sprintf("; %d done already", done)
		}
		fmt.Fprintf(w, "submitted the tasks as job %s (array %s%s)\n", s.TasksJob, s.Array, note)
		fmt.Fprintf(w, "submitted the aggregation as job %s: it starts once every task has succeeded\n", s.AggregateJob)
	} else {
		fmt.Fprintf(w, "every task is done already\nsubmitted the aggregation as job %s\n", s.AggregateJob)
	}
	logs := job.Logs()
	fmt.Fprintf(w, `watch:    squeue -j %s
          sacct -j %s --format=JobID,JobName%%30,State,Elapsed,ExitCode
          %s
logs:     %s/
results:  %s (and compare.json, compare.csv, the figures) when job %s ends
cancel:   scancel %s (a task writes its checkpoint first)
resume:   run this command again: done tasks are skipped, partial ones resume
`, ids, ids, job.Command("--plan"), logs, filepath.Join(job.Out, job.Name, experiment.CompareMarkdown), s.AggregateJob,
		strings.ReplaceAll(ids, ",", " "))
}

// count says "1 task" or "4 tasks".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
