package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/experiment"
)

func newCompareCmd(e *env) *cobra.Command {
	var (
		cfgPath, out string
		sets         []string
	)
	cmd := &cobra.Command{
		Use:   "compare --config C.yaml [--out DIR] [--set key=value]...",
		Short: "Pretrain and probe every method x seed of a configuration and compare them",
		Long: `Run an experiment end to end: for every method and seed of the configuration,
pretrain (reusing a finished run, resuming an interrupted one), probe (reusing
a probe of the same model), then write into OUT/<config name>/:

  compare.json   runs, per-run results and per-method summaries with 95% intervals
  compare.csv    the per-run results
  compare.md     methods as rows, data set x metric as columns (mean over seeds
                 [95% bootstrap interval]), then every SINCERE - SupCon difference
                 whose paired bootstrap interval excludes 0, and collapsed runs
  similarity-<method>.png  target vs noise similarity histograms
  loss.png       the training loss of every run

and print the markdown table. Interrupted, it can simply be run again.`,
		Example: `  sincere compare --config configs/quick.yaml
  sincere compare --config configs/fashion.yaml --out results`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			c, err := experiment.Compare(ctx, cfgPath, experiment.CompareOptions{Out: out, Sets: sets,
				Reporter: e.trainReporter(), Fetch: &dataset.Fetcher{Progress: e.byteProgress()}})
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
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
