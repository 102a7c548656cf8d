package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/experiment"
)

func newProbeCmd(e *env) *cobra.Command {
	var extra []string
	var dir string
	var waitLock bool
	cmd := &cobra.Command{
		Use:   "probe --run DIR [--dataset NAME]...",
		Short: "Evaluate a pretrained encoder: kNN, linear probe and margin with 95% intervals",
		Long: `Evaluate a finished run (a directory sincere pretrain wrote) as the SINCERE
authors do, on the run's own test split and on every transfer data set
(the config's probe.datasets and --dataset), each against its own training
split:

  knn1, knn5  1-NN and similarity-weighted 5-NN accuracy on the L2-normalised
              projection output (encoder features for the ce baseline)
  linear      a linear probe: softmax regression on the frozen, standardised
              encoder features, trained with gorgonia
  margin      median(target) - median(noise) over the test images, where an
              image's target is the highest cosine similarity of its embedding
              to a training embedding of its own class and its noise the
              highest to one of another class: a difference of two medians,
              not the median of per-image differences (the SINCERE authors'
              sim_median_margin, bootstrap_margin.py; they report its
              absolute value, here the sign is kept)
  bound       the SINCERE authors' expected_bound (embed_stats.py) on the
              test embeddings at the run's temperature: the mean over test
              images i of log(#other-class + 1) + the mean over same-class
              j != i of log(e^s_ij / (e^s_ij + sum over other-class k of
              e^s_ik)), from the fused engine's per-row SINCERE terms

each with a 95% bootstrap interval (probe.bootstrap resamples of the test
set, the authors' protocol). Results go to RUN/probe.json (per-image outcomes to probe.gob), the
features to RUN/features/ (reused while the model is unchanged). A run is
flagged as collapsed when its test embeddings point one way (mean pairwise
cosine above 0.9) or its margin is below 0.001.

The run directory is locked while the probe runs (RUN/lock names the host
and pid); a second process fails at once naming the holder, or waits with
--wait-lock.`,
		Example: `  sincere probe --run runs/quick/sincere-seed1
  sincere probe --run runs/quick/sincere-seed1 --dataset fashion-mnist`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := experiment.Probe(cmd.Context(), dir, experiment.ProbeOptions{Extra: extra,
				Fetch: &dataset.Fetcher{Progress: e.byteProgress()}, Reporter: e.trainReporter(), WaitLock: waitLock})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DATASET\tMETRIC\tVALUE\t95% INTERVAL")
			for _, x := range r.Results {
				fmt.Fprintf(tw, "%s\t%s\t%.4f\t[%.4f, %.4f]\n", x.Dataset, x.Metric, x.Value, x.CILow, x.CIHigh)
			}
			fmt.Fprintf(tw, "mean pairwise cosine of the test embeddings: %.3f\n", r.MeanCosine)
			if r.Collapsed {
				fmt.Fprintln(tw, "collapsed: the embeddings point one way or the classes are not separated")
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "run", "", "run directory (OUT/<config name>/<method>-seed<S>)")
	cmd.Flags().StringArrayVar(&extra, "dataset", nil, "transfer data set to probe as well (repeatable)")
	cmd.Flags().BoolVar(&waitLock, "wait-lock", false, waitLockHelp)
	_ = cmd.MarkFlagRequired("run")
	return cmd
}
