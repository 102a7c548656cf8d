package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/experiment"
	"github.com/sincere-ml/sincere/internal/report"
)

func newAnalyzeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Analyses of a trained encoder: intra-class repulsion",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRepulsionCmd(e))
	return cmd
}

func newRepulsionCmd(e *env) *cobra.Command {
	var (
		o   experiment.RepulsionOptions
		out string
	)
	cmd := &cobra.Command{
		Use:   "repulsion (--run DIR | --init --config C.yaml) [--k K]... [--batches B] [--out DIR]",
		Short: "Measure how much SupCon's gradient pushes same-class embeddings apart, and SINCERE's",
		Long: `The SINCERE paper's point: SupCon puts every other same-class sample into the
softmax denominator of each positive pair, so its gradient pushes some
same-class embeddings apart, the more so the more same-class images a batch
holds; SINCERE, whose denominators hold one positive and the negatives, never
does.

For a trained run (or --init: an untrained encoder of a configuration), this
draws batches as training does (the configured augmentation and views,
batch norm in training mode) holding k images of each of min(classes,
batch/k) classes, for k = 2, 4, 8, ... up to half the training batch (or each
--k), embeds them, and for SupCon and SINCERE at the run's temperature forms
G = dL/dS, the gradient with respect to the similarities s_ij = z_i.z_j/tau.
A same-class pair (i, j) is repelled when G_ij > 0. Reported per loss and k,
pooled over --batches batches:

  repelled fraction  the fraction of same-class pairs with G_ij > 0
  repulsive share    sum of max(G_ij, 0) / sum of |G_ij| over same-class pairs

SINCERE's are exactly 0. The numbers come from the fused CPU engine's
pair-statistics pass (no N x N matrix). Writes repulsion.json and
repulsion.png into --out (default: the run directory) and prints the table.`,
		Example: `  sincere analyze repulsion --run runs/quick/supcon-seed1
  sincere analyze repulsion --init --config configs/quick.yaml --out runs/init-repulsion`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Fetch = &dataset.Fetcher{Progress: e.byteProgress()}
			if out == "" {
				if o.Run == "" {
					return fmt.Errorf("--out: needed with --init")
				}
				out = o.Run
			}
			r, err := experiment.AnalyzeRepulsion(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return err
			}
			if err := atomicfile.Write(filepath.Join(out, "repulsion.json"), append(b, '\n')); err != nil {
				return err
			}
			series := map[string]*report.RepulsionSeries{}
			var order []string
			for _, row := range r.Rows {
				s, ok := series[row.Loss]
				if !ok {
					s = &report.RepulsionSeries{Loss: row.Loss}
					series[row.Loss], order = s, append(order, row.Loss)
				}
				s.K, s.Fraction, s.Share = append(s.K, float64(row.K)), append(s.Fraction, row.RepelledFraction), append(s.Share, row.RepulsiveShare)
			}
			var list []report.RepulsionSeries
			for _, l := range order {
				list = append(list, *series[l])
			}
			title := fmt.Sprintf("intra-class repulsion, %s on %s, tau %g", filepath.Base(r.Encoder), r.Dataset, r.Temperature)
			if err := report.RepulsionPlot(filepath.Join(out, "repulsion.png"), title, list); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "K\tCLASSES\tROWS\tLOSS\tPAIRS\tREPELLED\tREPELLED FRACTION\tREPULSIVE SHARE")
			for _, x := range r.Rows {
				fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%d\t%.4f\t%.4f\n", x.K, x.Classes, x.Rows, x.Loss, x.Pairs, x.Repelled, x.RepelledFraction, x.RepulsiveShare)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			e.logf("analyze repulsion: %s and repulsion.png in %s", "repulsion.json", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Run, "run", "", "a finished contrastive run directory")
	f.BoolVar(&o.Init, "init", false, "analyse an untrained encoder of --config instead")
	f.StringVar(&o.Config, "config", "", "configuration of the untrained encoder (with --init)")
	f.StringVar(&o.Method, "method", "", "method whose settings (temperature) apply, with --init (default sincere)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the batches (and of the untrained encoder)")
	f.StringArrayVar(&o.Sets, "set", nil, "override a configuration key, e.g. --set loss.temperature=0.2 (repeatable)")
	f.IntSliceVar(&o.Ks, "k", nil, "same-class images per class in a batch (repeatable; default 2, 4, ... up to half the batch)")
	f.IntVar(&o.Batches, "batches", 4, "batches drawn for each k")
	f.StringVar(&out, "out", "", "folder for repulsion.json and repulsion.png (default: the run directory)")
	return cmd
}
