package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/backend"
	"github.com/sincere-ml/sincere/internal/npyfile"
)

// lossOutput is the JSON object `sincere loss` prints.
type lossOutput struct {
	Loss            float64  `json:"loss"`
	N               int      `json:"n"`
	D               int      `json:"d"`
	Anchors         int      `json:"anchors"`
	Device          string   `json:"device"`
	Method          string   `json:"method"`
	Temperature     float64  `json:"temperature"`
	Epsilon         *float64 `json:"epsilon,omitempty"`
	BaseTemperature *float64 `json:"base_temperature,omitempty"`
	GradOut         string   `json:"grad_out,omitempty"`
	GPU             string   `json:"gpu,omitempty"`
	Precision       string   `json:"precision,omitempty"`
}

func newLossCmd(e *env) *cobra.Command {
	var (
		lossName, zPath, yPath, gradPath, device, precision string
		p                                                   kernels.Params
	)
	cmd := &cobra.Command{
		Use:   "loss --loss NAME --temperature T --embeddings Z.npy --labels Y.npy [--grad-out G.npy]",
		Short: "Evaluate a supervised contrastive loss and its gradient on saved embeddings",
		Long: `Evaluate SupCon, SINCERE or eps-SupInfoNCE on embeddings saved as .npy files,
exactly as DESIGN section 2 defines them, and print one JSON object:

  {"loss": ..., "n": N, "d": D, "anchors": |A|, "device": "cpu", ...}

Z.npy holds an (N, D) float32 or float64 array, one embedding per row,
L2-normalised by you (rows are used as given); Y.npy holds N labels of any
integer dtype. Two views of B images are simply N = 2B rows with repeated
labels; the order of rows does not matter. Anchors (rows with at least one
positive) are counted in "anchors"; rows whose label occurs once are only
negatives. With --grad-out the gradient dL/dZ is written as an (N, D) float32
.npy file, atomically: the file appears whole or not at all.

SupCon's --base-temperature b multiplies the loss by T/b; 0 (the default)
means b = T, as the SINCERE authors use it (HobbitLong's SupCon code uses
0.07). --epsilon is eps-SupInfoNCE's margin.

--device cuda runs the fused CUDA kernels; it needs the GPU build of sincere
(make cuda) on a machine with an NVIDIA GPU. --device auto (the default) uses
the GPU when it can and says on stderr when it computes on the CPU instead.
--precision picks how the GPU multiplies: tf32x3 (the default where the GPU
has TF32 tensor cores: float32 accuracy), tf32 (about 3x faster, gradients to
~1e-3) or fp32 (plain float32 cores, any GPU).`,
		Example: `  sincere loss --loss sincere --temperature 0.1 --embeddings z.npy --labels y.npy
  sincere loss --loss supcon --temperature 0.1 --base-temperature 0.07 \
      --embeddings z.npy --labels y.npy --grad-out dz.npy
  sincere loss --loss eps-supinfonce --epsilon 0.25 --temperature 0.05 \
      --embeddings z.npy --labels y.npy --device auto`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := kernels.ParseLoss(lossName)
			if err != nil {
				return err
			}
			p.Loss = l
			if err := p.Validate(); err != nil {
				return err
			}
			if gradPath != "" {
				if err := atomicfile.CheckTarget(gradPath); err != nil {
					return fmt.Errorf("--grad-out: %w", err)
				}
			}
			z, n, d, err := npyfile.ReadMatrix(zPath)
			if err != nil {
				return fmt.Errorf("embeddings: %w", err)
			}
			labels, err := npyfile.ReadLabels(yPath)
			if err != nil {
				return fmt.Errorf("labels: %w", err)
			}
			if len(labels) != n {
				return fmt.Errorf("%s holds %d labels for the %d embeddings in %s", yPath, len(labels), n, zPath)
			}
			if err := kernels.CheckInputs(z, n, d, labels); err != nil {
				return fmt.Errorf("%s: %w", zPath, err)
			}
			if err := checkRange(z, n, d, p.Temperature); err != nil {
				return fmt.Errorf("%s: %w", zPath, err)
			}
			if n > 0 && !slices.ContainsFunc(labels, func(y int) bool { return y != labels[0] }) {
				return fmt.Errorf("the loss is undefined: all %d labels in %s are %d; a supervised contrastive loss needs at least two classes", n, yPath, labels[0])
			}
			eng, err := backend.OpenLossEngine(device, kernels.Options{CUDA: kernels.CUDAOptions{Precision: precision}})
			if err != nil {
				return err
			}
			defer closeEngine(eng)
			var grad []float32
			if gradPath != "" {
				grad = make([]float32, n*d)
			}
			res, err := eng.Compute(p, z, n, d, labels, grad)
			if err != nil {
				return err
			}
			// Nothing is written unless the whole result is finite.
			if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
				return fmt.Errorf("the loss overflowed: it is %v at temperature %g (rows of %s too long, or the temperature too small?)", res.Loss, p.Temperature, zPath)
			}
			if i := slices.IndexFunc(grad, func(g float32) bool { return math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) }); i >= 0 {
				return fmt.Errorf("the gradient overflowed: dL/dZ[%d][%d] is %v at temperature %g; nothing written to %s", i/d, i%d, grad[i], p.Temperature, gradPath)
			}
			if gradPath != "" {
				if err := npyfile.WriteMatrix(gradPath, grad, n, d); err != nil {
					return fmt.Errorf("gradient: %w", err)
				}
			}
			if device == kernels.DeviceAuto && eng.Device() == kernels.DeviceCPU {
				e.logf("loss: computed on the CPU: %s", cpuReason())
			}
			out := lossOutput{Loss: res.Loss, N: n, D: d, Anchors: res.Anchors, Device: eng.Device(),
				Method: l.String(), Temperature: p.Temperature, GradOut: gradPath}
			if g, ok := eng.(kernels.Profiler); ok {
				out.GPU, out.Precision = g.Info().Name, g.Precision()
			}
			switch l {
			case kernels.EpsSupInfoNCE:
				out.Epsilon = &p.Epsilon
			case kernels.SupCon:
				b := p.BaseTemperature
				if b == 0 {
					b = p.Temperature
				}
				out.BaseTemperature = &b
			}
			enc := json.NewEncoder(e.stdout)
			return enc.Encode(out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&lossName, "loss", "", "the loss: supcon, sincere or eps-supinfonce")
	f.Float64Var(&p.Temperature, "temperature", 0, "temperature tau > 0 (similarities are z_i.z_j / tau)")
	f.Float64Var(&p.Epsilon, "epsilon", 0.25, "margin of eps-supinfonce (ignored by the others)")
	f.Float64Var(&p.BaseTemperature, "base-temperature", 0, "SupCon's base temperature b (loss times tau/b); 0 means b = tau")
	f.StringVar(&zPath, "embeddings", "", "(N, D) float32 or float64 .npy file of embeddings")
	f.StringVar(&yPath, "labels", "", "(N,) integer .npy file of labels")
	f.StringVar(&gradPath, "grad-out", "", "write dL/dZ here as an (N, D) float32 .npy file")
	f.StringVar(&device, "device", kernels.DeviceAuto, "cpu, cuda, or auto (the GPU when this binary has CUDA support and one is present)")
	f.StringVar(&precision, "precision", kernels.PrecisionAuto, "GPU tile products: auto, tf32x3, tf32 or fp32 (see above; ignored on the CPU)")
	for _, name := range []string{"loss", "temperature", "embeddings", "labels"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// closeEngine releases an engine that holds a device.
func closeEngine(eng kernels.LossEngine) {
	if c, ok := eng.(io.Closer); ok {
		_ = c.Close()
	}
}

// cpuReason says why --device auto chose the CPU.
func cpuReason() string {
	if !backend.CUDASupport {
		return "this binary has no CUDA support (`make cuda` builds one for NVIDIA GPUs)"
	}
	return "no usable NVIDIA GPU was found"
}

// checkRange reports embeddings whose similarities z_i.z_j / T cannot be
// represented in float32, where the losses compute them: by Cauchy-Schwarz
// every similarity and every partial dot product is within the largest
// squared row norm, divided by T when T < 1.
func checkRange(z []float32, n, d int, temperature float64) error {
	worst, row := 0.0, 0
	for i := range n {
		var sq float64
		for _, v := range z[i*d : (i+1)*d] {
			sq += float64(v) * float64(v)
		}
		if sq > worst {
			worst, row = sq, i
		}
	}
	if bound := max(worst, worst/temperature); bound > math.MaxFloat32 {
		return fmt.Errorf("the loss overflowed: row %d has squared norm %.3g, so similarities at temperature %g reach %.3g, beyond float32's %.3g (normalise the rows)",
			row, worst, temperature, bound, math.MaxFloat32)
	}
	return nil
}
