//go:build gpu

package cuda

import (
	_ "embed"
	"fmt"
	"github.com/sincere-ml/sincere/internal/kernels"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
)

// The kernels of cuda/loss.cu as PTX, compiled by `make ptx` with the LossEngine
// 11.8 toolkit (PTX ISA 7.8, which current drivers JIT-compile for their
// GPU): for compute capability 8.0 and newer (TF32 tensor cores) and for 6.0
// and newer (FP32 only).
var (
	//go:embed loss_sm80.ptx
	ptxSM80 string
	//go:embed loss_sm60.ptx
	ptxSM60 string
)

// Support reports whether this binary has a CUDA backend: it was built
// with the gpu tag. Such a binary needs the NVIDIA driver to start at all
// (gorgonia.org/cu initialises it when the program starts).
const Support = true

// OpenLossEngine returns the CUDA loss engine on device 0.
func OpenLossEngine(opt kernels.CUDAOptions) (kernels.LossEngine, error) {
	drv, err := newCUDriver(0)
	if err != nil {
		return nil, err
	}
	e, err := newLossEngine(drv, opt)
	if err != nil {
		_ = drv.Close()
		return nil, err
	}
	return e, nil
}

// Available reports whether the driver sees a GPU.
func Available() bool {
	n, err := cu.NumDevices()
	return err == nil && n > 0
}

// cuDriver is gpuDriver on the NVIDIA driver through gorgonia.org/cu. A LossEngine
// context is current per OS thread, so every call locks the goroutine to
// its thread and makes the engine's context current first.
type cuDriver struct {
	mu    sync.Mutex
	ctx   cu.CUContext
	mod   cu.Module
	fns   map[string]cu.Function
	start cu.Event
	stop  cu.Event
	info  kernels.GPUInfo
}

// newCUDriver creates a context on a device and loads the kernels for it.
func newCUDriver(ordinal int) (d *cuDriver, err error) {
	count, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count devices: %w", err)
	}
	if ordinal >= count {
		return nil, fmt.Errorf("cuda: no GPU %d (the driver sees %d)", ordinal, count)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("cuda: device %d: %w", ordinal, err)
	}
	info := kernels.GPUInfo{}
	if info.Name, err = dev.Name(); err != nil {
		return nil, fmt.Errorf("cuda: device name: %w", err)
	}
	for _, a := range []struct {
		attr cu.DeviceAttribute
		dst  *int
	}{
		{cu.ComputeCapabilityMajor, &info.Major}, {cu.ComputeCapabilityMinor, &info.Minor},
		{cu.MultiprocessorCount, &info.SMs}, {cu.ClockRate, &info.ClockKHz},
	} {
		if *a.dst, err = dev.Attribute(a.attr); err != nil {
			return nil, fmt.Errorf("cuda: device attribute: %w", err)
		}
	}
	if info.Memory, err = dev.TotalMem(); err != nil {
		return nil, fmt.Errorf("cuda: device memory: %w", err)
	}
	ptx := ptxSM80
	switch {
	case info.Major < 6:
		return nil, fmt.Errorf("cuda: %s has compute capability %d.%d; sincere's kernels need 6.0 or newer", info.Name, info.Major, info.Minor)
	case info.Major < 8:
		ptx = ptxSM60
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d = &cuDriver{info: info, fns: map[string]cu.Function{}}
	if d.ctx, err = dev.MakeContext(cu.SchedAuto); err != nil {
		return nil, fmt.Errorf("cuda: create context: %w", err)
	}
	defer func() {
		if err != nil {
			_ = d.ctx.Destroy()
		}
	}()
	if d.mod, err = cu.LoadData(ptx); err != nil {
		return nil, fmt.Errorf("cuda: load kernels (PTX JIT for %s, compute %d.%d): %w", info.Name, info.Major, info.Minor, err)
	}
	if d.start, err = cu.MakeEvent(cu.DefaultEvent); err != nil {
		return nil, fmt.Errorf("cuda: create event: %w", err)
	}
	if d.stop, err = cu.MakeEvent(cu.DefaultEvent); err != nil {
		return nil, fmt.Errorf("cuda: create event: %w", err)
	}
	return d, nil
}

// do runs f on a locked OS thread with the context current.
func (d *cuDriver) do(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("cuda: make context current: %w", err)
	}
	return f()
}

func (d *cuDriver) Info() kernels.GPUInfo { return d.info }

func (d *cuDriver) Alloc(bytes int) (devPtr, error) {
	var p cu.DevicePtr
	err := d.do(func() (err error) {
		p, err = cu.MemAlloc(int64(bytes))
		return err
	})
	return devPtr(p), err
}

func (d *cuDriver) Free(p devPtr, _ int) error {
	return d.do(func() error { return cu.MemFree(cu.DevicePtr(p)) })
}

func (d *cuDriver) Upload(dst devPtr, src unsafe.Pointer, bytes int) error {
	return d.do(func() error { return cu.MemcpyHtoD(cu.DevicePtr(dst), src, int64(bytes)) })
}

func (d *cuDriver) Download(dst unsafe.Pointer, src devPtr, bytes int) error {
	return d.do(func() error { return cu.MemcpyDtoH(dst, cu.DevicePtr(src), int64(bytes)) })
}

// Launch records an event, launches, records another and waits for it:
// errors the kernel raised while running surface here.
func (d *cuDriver) Launch(kernel string, grid, block [3]int, args []uint64) (float64, error) {
	var ms float64
	err := d.do(func() error {
		fn, ok := d.fns[kernel]
		if !ok {
			var err error
			if fn, err = d.mod.Function(kernel); err != nil {
				return fmt.Errorf("cuda: no kernel %s in the module: %w", kernel, err)
			}
			d.fns[kernel] = fn
		}
		params := make([]unsafe.Pointer, len(args))
		for i := range args {
			params[i] = unsafe.Pointer(&args[i])
		}
		if err := d.start.Record(cu.NoStream); err != nil {
			return fmt.Errorf("cuda: record event: %w", err)
		}
		if err := fn.Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, cu.NoStream, params); err != nil {
			return fmt.Errorf("cuda: launch: %w", err)
		}
		if err := d.stop.Record(cu.NoStream); err != nil {
			return fmt.Errorf("cuda: record event: %w", err)
		}
		if err := d.stop.Synchronize(); err != nil {
			return fmt.Errorf("cuda: kernel failed: %w", err)
		}
		var err error
		if ms, err = d.start.Elapsed(d.stop); err != nil {
			return fmt.Errorf("cuda: event time: %w", err)
		}
		return nil
	})
	return ms, err
}

func (d *cuDriver) Close() error {
	return d.do(func() error {
		_ = cu.DestroyEvent(&d.start)
		_ = cu.DestroyEvent(&d.stop)
		if err := d.mod.Unload(); err != nil {
			return fmt.Errorf("cuda: unload module: %w", err)
		}
		return d.ctx.Destroy()
	})
}
