//go:build gpu

package cuda

import (
	"embed"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// The kernels as PTX, one module per family (loss, elementwise, norm, gemm,
// conv), compiled by `make ptx` with the CUDA 11.8 toolkit (PTX ISA 7.8,
// which current drivers JIT-compile for their GPU): for compute capability
// 8.0 and newer (TF32 tensor cores) and for 6.0 and newer (FP32 only).
//
//go:embed *_sm80.ptx *_sm60.ptx
var ptxFiles embed.FS

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

// OpenDevice returns the CUDA training device on GPU 0.
func OpenDevice(opt kernels.CUDAOptions) (kernels.Device, error) {
	drv, err := newCUDriver(0)
	if err != nil {
		return nil, err
	}
	d, err := newDevice(drv, opt)
	if err != nil {
		_ = drv.Close()
		return nil, err
	}
	return d, nil
}

// isEmulator reports whether the kernels run on the CPU emulator: no.
func isEmulator() bool { return false }

// Available reports whether the driver sees a GPU.
func Available() bool {
	n, err := cu.NumDevices()
	return err == nil && n > 0
}

// cuDriver is gpuDriver on the NVIDIA driver through gorgonia.org/cu. A CUDA
// context is current per OS thread, so every call locks the goroutine to
// its thread and makes the engine's context current first.
type cuDriver struct {
	mu     sync.Mutex
	ctx    cu.CUContext
	mods   []cu.Module
	fns    map[string]cu.Function
	events []cu.Event // the marks' events, reused
	marks  int        // marks recorded since ResetMarks
	info   kernels.GPUInfo
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
	suffix := "_sm80.ptx"
	switch {
	case info.Major < 6:
		return nil, fmt.Errorf("cuda: %s has compute capability %d.%d; sincere's kernels need 6.0 or newer", info.Name, info.Major, info.Minor)
	case info.Major < 8:
		suffix = "_sm60.ptx"
	}
	files, err := fs.Glob(ptxFiles, "*"+suffix)
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("cuda: no embedded PTX (%v)", err)
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
	for _, f := range files {
		ptx, err := ptxFiles.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cuda: %s: %w", f, err)
		}
		mod, err := cu.LoadData(string(ptx))
		if err != nil {
			return nil, fmt.Errorf("cuda: load %s (PTX JIT for %s, compute %d.%d): %w", f, info.Name, info.Major, info.Minor, err)
		}
		d.mods = append(d.mods, mod)
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

// function finds a kernel in the modules.
func (d *cuDriver) function(kernel string) (cu.Function, error) {
	if fn, ok := d.fns[kernel]; ok {
		return fn, nil
	}
	for _, m := range d.mods {
		if fn, err := m.Function(kernel); err == nil {
			d.fns[kernel] = fn
			return fn, nil
		}
	}
	return cu.Function{}, fmt.Errorf("cuda: no kernel %s in the modules", kernel)
}

// Launch queues a kernel on the default stream.
func (d *cuDriver) Launch(kernel string, grid, block [3]int, args []uint64) error {
	return d.do(func() error {
		fn, err := d.function(kernel)
		if err != nil {
			return err
		}
		params := make([]unsafe.Pointer, len(args))
		for i := range args {
			params[i] = unsafe.Pointer(&args[i])
		}
		if err := fn.Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, cu.NoStream, params); err != nil {
			return fmt.Errorf("cuda: launch %s (grid %v, block %v): %w", kernel, grid, block, err)
		}
		return nil
	})
}

// Sync waits for the context's work.
func (d *cuDriver) Sync() error {
	return d.do(func() error { return cu.Synchronize() })
}

// Mark records the next event of the pool.
func (d *cuDriver) Mark() (int, error) {
	var at int
	err := d.do(func() error {
		if d.marks == len(d.events) {
			ev, err := cu.MakeEvent(cu.DefaultEvent)
			if err != nil {
				return fmt.Errorf("cuda: create event: %w", err)
			}
			d.events = append(d.events, ev)
		}
		at = d.marks
		if err := d.events[at].Record(cu.NoStream); err != nil {
			return fmt.Errorf("cuda: record event: %w", err)
		}
		d.marks++
		return nil
	})
	return at, err
}

// Elapsed waits for the later mark and returns the time between the two.
func (d *cuDriver) Elapsed(from, to int) (float64, error) {
	var ms float64
	err := d.do(func() error {
		if from < 0 || to >= d.marks || from > to {
			return fmt.Errorf("cuda: no marks %d and %d", from, to)
		}
		if err := d.events[to].Synchronize(); err != nil {
			return fmt.Errorf("cuda: wait for event: %w", err)
		}
		var err error
		if ms, err = d.events[from].Elapsed(d.events[to]); err != nil {
			return fmt.Errorf("cuda: event time: %w", err)
		}
		return nil
	})
	return ms, err
}

// ResetMarks lets the pool's events be recorded again.
func (d *cuDriver) ResetMarks() { d.marks = 0 }

func (d *cuDriver) Close() error {
	return d.do(func() error {
		for i := range d.events {
			_ = cu.DestroyEvent(&d.events[i])
		}
		for _, m := range d.mods {
			if err := m.Unload(); err != nil {
				return fmt.Errorf("cuda: unload module: %w", err)
			}
		}
		return d.ctx.Destroy()
	})
}
