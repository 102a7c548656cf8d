package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/experiment"
	"github.com/sincere-ml/sincere/internal/export"
	"github.com/sincere-ml/sincere/internal/safetensors"
)

func newExportCmd(e *env) *cobra.Command {
	var dir, format, out string
	cmd := &cobra.Command{
		Use:   "export --run DIR --format safetensors --out FILE",
		Short: "Write a trained encoder and head as a PyTorch state dict (safetensors)",
		Long: `Write a finished run's encoder and head, with their batch-norm running
statistics, as safetensors in the parameter names and layouts of a PyTorch
module, so that

  model.load_state_dict(safetensors.torch.load_file(FILE), strict=True)

accepts it. The ResNets load into the SINCERE authors' SupConResNet (or
SupCEResNet for a ce run) of networks/resnet_big.py (tufts-ml/SupContrast,
HobbitLong/SupContrast): encoder.conv1.weight (OIHW), encoder.bn1.weight,
.bias, .running_mean, .running_var, .num_batches_tracked, encoder.layer1.0...,
head.0.weight, head.0.bias, head.2.weight, head.2.bias. The cnn and mlp load
into the modules scripts/torch_check.py defines (encoder.conv1..3 and
encoder.bn1..3; encoder.fc1, fc2 and bn1, bn2; the same head). The mapping
is documented in internal/export. The file's metadata names the module, the
input shape and the normalisation the model expects (NCHW float32, pixels in
[0, 1], then (x - mean) / std per channel with the run's mean and std).

scripts/torch_check.py rebuilds the model in PyTorch, loads the file strictly
and checks its embeddings against sincere embed's.`,
		Example: `  sincere export --run runs/quick/sincere-seed1 --out sincere-seed1.safetensors
  python3 scripts/torch_check.py --run runs/quick/sincere-seed1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "safetensors" {
				return fmt.Errorf("--format: only safetensors is supported, got %q", format)
			}
			tr, m, err := experiment.LoadModel(dir)
			if err != nil {
				return err
			}
			tensors, err := export.PyTorch(m)
			if err != nil {
				return err
			}
			if err := safetensors.WriteFile(out, tensors, export.Metadata(m, tr.Mean, tr.Std)); err != nil {
				return err
			}
			e.logf("export: %d arrays for %s in %s", len(tensors), export.Module(m), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "run", "", "run directory (OUT/<config name>/<method>-seed<S>)")
	f.StringVar(&format, "format", "safetensors", "output format (safetensors)")
	f.StringVar(&out, "out", "", "file to write (written whole or not at all)")
	_ = cmd.MarkFlagRequired("run")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
