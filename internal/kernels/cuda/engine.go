//go:build gpu || gpuemu

package cuda

import (
	"fmt"
	"strings"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// LossEngine is the fused loss engine on an NVIDIA GPU, from host memory to
// host memory: a thin wrapper over Device.ContrastiveLoss for `sincere loss`
// and the benchmarks. Each call uploads Z and the labels into an arena it
// keeps (grown when a call needs more), runs the loss, and downloads the
// loss and the gradient. It must not be used by two goroutines at once;
// Close releases the GPU.
type LossEngine struct {
	dev   *Device
	arena *kernels.Arena
	prof  kernels.CUDAProfile
	host  []int32
}

// newLossEngine returns an engine on a driver, its tiles in the given
// precision (auto: TF32x3 on tensor cores, else FP32).
func newLossEngine(drv gpuDriver, opt kernels.CUDAOptions) (*LossEngine, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	dev, err := newDevice(drv, kernels.CUDAOptions{})
	if err != nil {
		return nil, err
	}
	switch opt.Precision {
	case kernels.PrecisionFP32:
		dev.lossPrec = kernels.PrecisionFP32
	case kernels.PrecisionTF32, kernels.PrecisionTF32x3:
		if dev.info.Major < 8 {
			return nil, fmt.Errorf("precision %s needs TF32 tensor cores (compute capability 8.0 or newer); %s has %d.%d: use --precision fp32",
				opt.Precision, dev.info.Name, dev.info.Major, dev.info.Minor)
		}
		dev.lossPrec = opt.Precision
	}
	return &LossEngine{dev: dev}, nil
}

// Device returns "cuda".
func (c *LossEngine) Device() string { return kernels.DeviceCUDA }

// Describe names the GPU and the precision of the tiles.
func (c *LossEngine) Describe() string {
	i := c.dev.info
	return fmt.Sprintf("%s (compute %d.%d, %d SMs), %s tiles", i.Name, i.Major, i.Minor, i.SMs, c.dev.lossPrec)
}

// Info describes the GPU.
func (c *LossEngine) Info() kernels.GPUInfo { return c.dev.info }

// Precision is the precision of the similarity tiles: fp32, tf32 or tf32x3.
func (c *LossEngine) Precision() string { return c.dev.lossPrec }

// Profile describes the last Compute: each kernel's time (device events
// around it) and the device memory held beyond the inputs and the output.
func (c *LossEngine) Profile() kernels.CUDAProfile { return c.prof }

// Close releases the device memory and the context.
func (c *LossEngine) Close() error {
	var err error
	if c.arena != nil {
		err = c.arena.Free()
		c.arena = nil
	}
	if cerr := c.dev.Close(); err == nil {
		err = cerr
	}
	return err
}

// Compute evaluates the loss of embeddings z (n rows of d float32,
// row-major) with the given labels on the GPU, and when grad is not nil
// (n x d) writes dL/dZ into it. Rows are used as given: callers
// L2-normalise them.
func (c *LossEngine) Compute(p kernels.Params, z []float32, n, d int, labels []int, grad []float32) (kernels.Result, error) {
	if err := p.Validate(); err != nil {
		return kernels.Result{}, err
	}
	// Shapes here; NaN and Inf are found on the device (the gather
	// kernel's flag), so that the host does not scan N x D values.
	if err := kernels.CheckShapes(len(z), n, d, labels); err != nil {
		return kernels.Result{}, err
	}
	if grad != nil && len(grad) != n*d {
		return kernels.Result{}, fmt.Errorf("gradient buffer holds %d values, want %d", len(grad), n*d)
	}
	need := kernels.ArenaBytes(kernels.FloatBytes(n*d), kernels.FloatBytes(n*d), 4*n, 8)
	if c.arena == nil || c.arena.Size() < need {
		if c.arena != nil {
			if err := c.arena.Free(); err != nil {
				return kernels.Result{}, err
			}
		}
		var err error
		if c.arena, err = kernels.NewArena(c.dev, "loss inputs and output", need); err != nil {
			return kernels.Result{}, err
		}
	}
	c.arena.Reset()
	zb, _ := c.arena.Take(n * d)
	gb, _ := c.arena.Take(n * d)
	lb, _ := c.arena.TakeInts(n)
	out, _ := c.arena.TakeScalars(1)
	c.host = c.host[:0]
	for _, y := range labels {
		c.host = append(c.host, int32(y))
	}
	dev := c.dev
	dev.Upload(zb, z)
	dev.UploadInts(lb, c.host)
	if grad == nil {
		gb = kernels.Buffer{}
	}
	timer := dev.Timer()
	if _, err := timer.Read(); err != nil {
		return kernels.Result{}, err
	}
	dev.profile = true
	timer.Start()
	dev.ContrastiveLoss(p, zb, n, d, lb, gb, out)
	dev.profile = false
	loss := make([]float64, 1)
	if err := dev.ReadScalars(loss, out); err != nil {
		return kernels.Result{}, unwrapOp(err)
	}
	spans, err := timer.Read()
	if err != nil {
		return kernels.Result{}, err
	}
	c.prof = kernels.CUDAProfile{}
	for _, s := range spans {
		c.prof.Kernels = append(c.prof.Kernels, kernels.KernelTime{Name: s.Name, MS: float64(s.Time.Nanoseconds()) / 1e6})
	}
	for name, b := range dev.scratch {
		if !strings.HasPrefix(name, sortOrderPrefix) && !strings.HasPrefix(name, sortLabelsPrefix) {
			c.prof.ScratchBytes += int64(b.bytes)
		}
	}
	if grad != nil {
		if err := dev.Download(grad, gb); err != nil {
			return kernels.Result{}, unwrapOp(err)
		}
	}
	return kernels.Result{Loss: loss[0], Anchors: dev.loss.sorts[i32p(lb)].anchors}, nil
}

// unwrapOp returns the cause of a device operation's failure: the engine's
// callers see the loss's own errors (no anchors, a NaN at a row and
// column), as from the CPU engine.
func unwrapOp(err error) error {
	if oe, ok := err.(*kernels.OpError); ok {
		return oe.Err
	}
	return err
}
