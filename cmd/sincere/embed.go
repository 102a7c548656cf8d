package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/experiment"
	"github.com/sincere-ml/sincere/internal/npyfile"
)

func newEmbedCmd(e *env) *cobra.Command {
	var (
		o                     experiment.EmbedOptions
		dir, out, labels, ins string
	)
	cmd := &cobra.Command{
		Use:   "embed --run DIR [--dataset NAME] [--split train|test] --out E.npy",
		Short: "Write a trained encoder's embeddings (or features) of a data set, with labels",
		Long: `Run a finished run's encoder over a split of a data set (no augmentation,
normalised as in training) and write, for your own analysis:

  E.npy          float32 (N, D): the L2-normalised projection output, the
                 embeddings kNN and the margin use (the normalised encoder
                 features for a ce run); with --features the encoder features
                 the linear probe uses
  E.labels.npy   int64 (N,): the class of each row (or --labels-out)

in the split's order. The run's own data set keeps its class filter; other
data sets are taken whole. --limit keeps the first N images. --inputs-out
also writes the images as the encoder took them, float32 (N, C*H*W) in
PyTorch's channel-major order, normalised: what scripts/torch_check.py feeds
an exported model.`,
		Example: `  sincere embed --run runs/quick/sincere-seed1 --out test.npy
  sincere embed --run runs/quick/sincere-seed1 --dataset fashion-mnist --split train --features --out f.npy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Fetch = &dataset.Fetcher{Progress: e.byteProgress()}
			r, err := experiment.Embed(cmd.Context(), dir, o)
			if err != nil {
				return err
			}
			if labels == "" {
				labels = strings.TrimSuffix(out, ".npy") + ".labels.npy"
			}
			if err := npyfile.WriteMatrix(out, r.Values, r.Rows, r.Cols); err != nil {
				return err
			}
			if err := npyfile.WriteLabels(labels, r.Labels); err != nil {
				return err
			}
			if ins != "" {
				if err := npyfile.WriteMatrix(ins, r.Inputs, r.Rows, len(r.Inputs)/max(r.Rows, 1)); err != nil {
					return err
				}
			}
			e.logf("embed: %d x %d in %s, labels in %s", r.Rows, r.Cols, out, labels)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "run", "", "run directory (OUT/<config name>/<method>-seed<S>)")
	f.StringVar(&o.Dataset, "dataset", "", "data set to embed (default: the run's own)")
	f.StringVar(&o.Split, "split", experiment.SplitTest, "split: train or test")
	f.BoolVar(&o.Features, "features", false, "write the encoder features instead of the embeddings")
	f.IntVar(&o.Limit, "limit", 0, "embed only the first N images of the split (0: all)")
	f.StringVar(&out, "out", "", "the .npy file for the embeddings")
	f.StringVar(&labels, "labels-out", "", "the .npy file for the labels (default: OUT with .labels.npy)")
	f.StringVar(&ins, "inputs-out", "", "also write the normalised input images (N, C*H*W) here")
	_ = cmd.MarkFlagRequired("run")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
