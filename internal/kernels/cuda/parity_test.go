//go:build gpu || gpuemu

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

// parityCase is a network whose training step the CUDA device computes
// beside the CPU device.
type parityCase struct {
	cfg  encoder.Config
	in   [3]int
	rows int
}

// parityCases are the networks of TestStepParity: tiny ones on the
// emulator, the training sizes on a GPU with SINCERE_GPU_CHECK=full (the
// cnn at 128 x 2 views of 28x28, the ResNets at 128 x 2 views of 32x32:
// the CPU has to compute the same step).
func parityCases(full bool) []parityCase {
	if full {
		return []parityCase{
			{encoder.Config{Arch: encoder.ArchCNN, Width: 1, Embedding: 128}, [3]int{1, 28, 28}, 256},
			{encoder.Config{Arch: encoder.ArchResNet18, Width: 1, Embedding: 128}, [3]int{3, 32, 32}, 256},
			{encoder.Config{Arch: encoder.ArchResNet50, Width: 1, Embedding: 128}, [3]int{3, 32, 32}, 256},
		}
	}
	return []parityCase{
		{encoder.Config{Arch: encoder.ArchCNN, Width: 0.25, Embedding: 8}, [3]int{1, 8, 8}, 16},
		{encoder.Config{Arch: encoder.ArchResNet18, Width: 0.0625, Embedding: 8}, [3]int{3, 8, 8}, 16},
		{encoder.Config{Arch: encoder.ArchResNet50, Width: 0.0625, Embedding: 8}, [3]int{3, 8, 8}, 16},
	}
}

// parityBound is the relative L2 bound on a gradient between the devices:
// issue 10's 1e-4 (fp32) and 1e-2 (tf32) at training sizes. The emulator's
// tiny networks amplify rounding about a hundredfold (see
// deviceTolerances), and in the 16 blocks of the tiny resnet50 the two
// devices' different roundings flip a few ReLU masks (values within 1e-5
// of 0), each of which moves a tensor of a few hundred values by percents:
// there 1e-3 for fp32 (0.3 for the tiny resnet50) and 1e-2 for the tiny
// cnn in tf32, whose rounding, a thousand times float32's, the tiny ResNets
// amplify past any meaningful bound: they run in tf32 at training sizes
// only (scripts/gpu-check.sh).
func parityBound(prec string, full bool, arch string) float64 {
	switch {
	case prec == kernels.PrecisionTF32 && full:
		return 1e-2
	case full:
		return 1e-4
	case prec == kernels.PrecisionTF32 && arch != encoder.ArchCNN:
		return -1 // not run
	case prec == kernels.PrecisionTF32:
		return 1e-2
	case arch == encoder.ArchResNet50:
		return 0.3
	}
	return 1e-3
}

// step runs one SINCERE training step of a model on its device: forward,
// loss, backward; it returns the loss and every parameter's gradient.
func step(t *testing.T, m *encoder.Model, x []float32, labels []int32, shape []int) (float64, map[string][]float32) {
	t.Helper()
	dev := m.Device()
	rows := shape[0]
	io, err := kernels.NewArena(dev, "parity", kernels.ArenaBytes(4*len(x), 4*rows*m.OutDim(), 4*rows, 8))
	if err != nil {
		t.Fatal(err)
	}
	defer io.Free()
	xb, _ := io.Take(len(x))
	dz, _ := io.Take(rows * m.OutDim())
	lb, _ := io.TakeInts(rows)
	loss, _ := io.TakeScalars(1)
	dev.Upload(xb, x)
	dev.UploadInts(lb, labels)
	z := m.Forward(encoder.Tensor{Buf: xb, Shape: shape}, true)
	dev.ContrastiveLoss(kernels.Params{Loss: kernels.SINCERE, Temperature: 0.1}, z.Buf, rows, m.OutDim(), lb, dz, loss)
	m.ZeroGrads()
	m.Backward(encoder.Tensor{Buf: dz, Shape: z.Shape})
	l := make([]float64, 1)
	if err := dev.ReadScalars(l, loss); err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for _, p := range m.Params() {
		g := make([]float32, p.Len())
		if err := dev.Download(g, p.G); err != nil {
			t.Fatal(err)
		}
		grads[p.Name] = g
	}
	return l[0], grads
}

// TestStepParity computes one training step of the cnn, resnet18 and
// resnet50 on the CUDA device and on the CPU device from the same weights
// and batch, and compares the loss and every parameter's gradient. It
// prints one line per tensor ("parity ARCH PREC TENSOR RELL2") and one per
// network, which scripts/gpu-check.sh collects.
func TestStepParity(t *testing.T) {
	full := os.Getenv("SINCERE_GPU_CHECK") == "full"
	cpuDev, err := cpu.NewDevice(kernels.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	precs := devicePrecisions(t)
	for _, c := range parityCases(full) {
		rng := rand.New(rand.NewPCG(11, uint64(c.rows)))
		shape := []int{c.rows, c.in[1], c.in[2], c.in[0]}
		x := make([]float32, c.rows*c.in[0]*c.in[1]*c.in[2])
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		labels := make([]int32, c.rows)
		for i := range labels {
			labels[i] = int32(i % 10)
		}
		ref := newModel(t, cpuDev, c)
		wantLoss, want := step(t, ref, x, labels, shape)
		params := ref.Params()
		if err := ref.Close(); err != nil {
			t.Fatal(err)
		}
		for _, prec := range precs {
			bound := parityBound(prec, full, c.cfg.Arch)
			if bound < 0 {
				t.Logf("%s %s: at training sizes only", c.cfg.Arch, prec)
				continue
			}
			gpu, err := OpenDevice(kernels.CUDAOptions{Precision: prec})
			if err != nil {
				t.Fatal(err)
			}
			m := newModel(t, gpu, c)
			gotLoss, got := step(t, m, x, labels, shape)
			var worst float64
			var worstName string
			for _, p := range params {
				e := numcheck.RelL2(got[p.Name], numcheck.Float64s(want[p.Name]))
				fmt.Printf("parity %s %s %s %.3g\n", c.cfg.Arch, prec, p.Name, e)
				if !(e <= worst) {
					worst, worstName = e, p.Name
				}
			}
			le := math.Abs(gotLoss-wantLoss) / math.Abs(wantLoss)
			fmt.Printf("parity %s %s: loss %.9g vs %.9g (rel %.2g), %d tensors, worst gradient rel L2 %.3g (%s), bound %g\n",
				c.cfg.Arch, prec, gotLoss, wantLoss, le, len(params), worst, worstName, bound)
			if !(worst <= bound) || !(le <= bound) {
				t.Errorf("%s %s: worst gradient rel L2 %.3g (%s), loss rel %.2g; bound %g", c.cfg.Arch, prec, worst, worstName, le, bound)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := gpu.(*Device).Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// newModel builds a case's model on a device (the weights depend only on
// the seed) and prepares it for one batch.
func newModel(t *testing.T, dev kernels.Device, c parityCase) *encoder.Model {
	t.Helper()
	m, err := encoder.New(dev, c.cfg, c.in, encoder.HeadProjection, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Prepare(c.rows, true); err != nil {
		t.Fatal(err)
	}
	return m
}
