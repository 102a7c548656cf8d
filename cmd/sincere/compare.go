package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/experiment"
)

func newCompareCmd(e *env) *cobra.Command {
	var (
		cfgPath, out        string
		sets                []string
		planOnly, aggregate bool
		waitLock            bool
		task                int
	)
	cmd := &cobra.Command{
		Use:   "compare --config C.yaml [--out DIR] [--set key=value]... [--plan | --task I | --aggregate]",
		Short: "Pretrain and probe every method x seed of a configuration and compare them",
		Long: `Run an experiment end to end: for every method and seed of the configuration,
pretrain (reusing a finished run, resuming an interrupted one), probe (reusing
a probe of the same model), then write into OUT/<config name>/:

  compare.json   runs, per-run results, per-method summaries (mean over seeds,
                 two-level interval, per-seed values) and paired differences
  compare.csv    the per-run results, each with its own 95% interval over
                 probe.bootstrap resamples of the test images
  compare.md     methods as rows, data set x metric as columns (mean over seeds
                 [95% interval]), the per-seed values, every SINCERE - SupCon
                 difference with its paired interval, and collapsed runs
  similarity-<method>.png  target vs noise similarity histograms
  loss.png       the training loss of every run

and print the markdown table. Interrupted, it can simply be run again.

The intervals of the means and of the differences come from a two-level
bootstrap (probe.bootstrap resamples): each resample draws the seeds with
replacement, then the test images with replacement within each drawn run, so
an interval covers training randomness as well as the test set. A difference
is resampled with the same seeds (by position) and test images for both
methods, and called significant only when its 95% interval excludes 0. The
metrics are probe's (see sincere probe --help); the margin is
median(target) - median(noise), a difference of two medians, as in the SINCERE
authors' bootstrap_margin.py.

A comparison is a list of tasks, one per (method, seed), that can also run
apart, in any order, on machines that share OUT (sincere slurm does this
with a Slurm job array):

  --plan       print the tasks: index, method, seed, state (done, partial,
               missing, or changed: trained with other settings) and run directory
  --task I     run task I alone: pretrain (resuming a partial run), then probe
  --aggregate  train nothing: read every run's probe and write the files above,
               or fail naming the runs that are not done

Every task, then --aggregate, gives the same files as one plain compare.
Each run directory is locked while a task trains or probes it (RUN/lock names
the host and pid): a second process fails at once naming the holder, or
waits with --wait-lock.`,
		Example: `  sincere compare --config configs/quick.yaml
  sincere compare --config configs/fashion.yaml --out results
  sincere compare --config configs/quick.yaml --plan
  sincere compare --config configs/quick.yaml --task 3
  sincere compare --config configs/quick.yaml --aggregate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			modes := 0
			for _, on := range []bool{planOnly, cmd.Flags().Changed("task"), aggregate} {
				if on {
					modes++
				}
			}
			if modes > 1 {
				return fmt.Errorf("--plan, --task and --aggregate exclude each other")
			}
			opt := experiment.CompareOptions{Out: out, Sets: sets, WaitLock: waitLock,
				Reporter: e.trainReporter(), Fetch: &dataset.Fetcher{Progress: e.byteProgress()}}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			switch {
			case planOnly:
				tasks, err := experiment.Plan(cfgPath, opt)
				if err != nil {
					return err
				}
				printPlan(e, tasks)
				return nil
			case cmd.Flags().Changed("task"):
				t, err := experiment.RunTask(ctx, cfgPath, task, opt)
				if err != nil {
					return err
				}
				e.logf("compare: task %d (%s, seed %d) is %s", t.Index, t.Method, t.Seed, t.State)
				fmt.Fprintln(e.stdout, t.Dir)
				return nil
			}
			run := experiment.Compare
			if aggregate {
				run = experiment.Aggregate
			}
			c, err := run(ctx, cfgPath, opt)
			if err != nil {
				return err
			}
			e.logf("compare: results in %s", c.Dir)
			fmt.Fprint(e.stdout, c.Markdown)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "experiment configuration (YAML); see configs/README.md")
	f.StringVar(&out, "out", "runs", "folder for the run directories and the comparison")
	f.StringArrayVar(&sets, "set", nil, "override a key for every run, e.g. --set train.epochs=1 (repeatable)")
	f.BoolVar(&planOnly, "plan", false, "print the comparison's tasks and their states; run nothing")
	f.IntVar(&task, "task", 0, "run task I alone (see --plan): pretrain and probe one method and seed")
	f.BoolVar(&aggregate, "aggregate", false, "write the comparison from finished, probed runs; train nothing")
	f.BoolVar(&waitLock, "wait-lock", false, waitLockHelp)
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// printPlan prints a comparison's tasks as a table, and a count of their
// states on stderr.
func printPlan(e *env, tasks []experiment.Task) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tMETHOD\tSEED\tSTATE\tRUN\tNOTE")
	count := map[experiment.TaskState]int{}
	for _, t := range tasks {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", t.Index, t.Method, t.Seed, t.State, t.Dir, t.Detail)
		count[t.State]++
	}
	_ = tw.Flush()
	var parts []string
	for _, s := range []experiment.TaskState{experiment.TaskDone, experiment.TaskPartial, experiment.TaskMissing, experiment.TaskChanged} {
		if count[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
		}
	}
	e.logf("%d tasks: %s", len(tasks), strings.Join(parts, ", "))
}
