package kernels

import (
	"fmt"
)

// Memory is one allocation of device memory, as the backend that made it
// knows it: Go memory on the CPU, a device address on a GPU. Code outside the
// backends holds it only through an Arena and the Buffer, Ints and Scalars
// views the arena hands out.
type Memory interface {
	// Bytes is the size of the allocation.
	Bytes() int
}

// MemStats is what a device has allocated.
type MemStats struct {
	// InUse is the number of bytes held now, the device's own scratch
	// included; Peak the most ever held at once.
	InUse, Peak int64
	// Allocs counts every allocation the device has made (arenas and its
	// own scratch alike): flat across training steps once the first step
	// has sized everything.
	Allocs int64
}

// view is the part of an allocation a Buffer, Ints or Scalars covers, in
// elements of its type from the start of the allocation.
type view struct {
	mem    Memory
	off, n int
}

// Buffer is n float32 values of device memory. The zero Buffer is "none",
// for optional operands.
type Buffer struct{ view }

// Ints is n int32 values of device memory (labels).
type Ints struct{ view }

// Scalars is n float64 values of device memory: losses and sums that stay
// on the device until the host reads them (Device.ReadScalars). The zero
// Scalars is "none".
type Scalars struct{ view }

// Len is the number of values.
func (v view) Len() int { return v.n }

// IsNil reports whether this is the zero view (no memory).
func (v view) IsNil() bool { return v.mem == nil }

// Mem returns the allocation and the offset of the first value in it, in
// values of the view's type; for backends.
func (v view) Mem() (Memory, int) { return v.mem, v.off }

// sub returns values [off, off+n) of v.
func (v view) sub(off, n int) view {
	if off < 0 || n < 0 || off+n > v.n {
		panic(fmt.Sprintf("kernels: sub-view [%d, %d) of %d values", off, off+n, v.n))
	}
	return view{v.mem, v.off + off, n}
}

// Sub returns values [off, off+n) of b, sharing its memory. It panics
// when the range is outside b: a programming error, not a data error.
func (b Buffer) Sub(off, n int) Buffer { return Buffer{b.sub(off, n)} }

// Sub returns values [off, off+n) of s, sharing its memory.
func (s Scalars) Sub(off, n int) Scalars { return Scalars{s.sub(off, n)} }

// Sub returns values [off, off+n) of s, sharing its memory.
func (s Ints) Sub(off, n int) Ints { return Ints{s.sub(off, n)} }

// Arena is one allocation of a device carved into views, for memory that
// lives as long as a run (parameters, gradients, momentum) or is reused step
// after step (a step's activations). Views are aligned to ArenaAlign
// bytes, so that two arenas carved by the same sequence of Take calls have
// the same layout: the SGD step and the gradient norm run once over a whole
// arena. Nothing is freed alone; Release and Reset give space back in
// stack order, Free returns the whole allocation to the device.
type Arena struct {
	dev  Device
	name string
	mem  Memory
	size int // bytes
	used int // bytes
}

// ArenaAlign is the alignment of every view an Arena hands out, in bytes:
// 64 float32 values, so that vector loads of any width stay aligned.
const ArenaAlign = 256

// NewArena allocates an arena of the given bytes on dev; name says what it
// holds, for errors.
func NewArena(dev Device, name string, bytes int) (*Arena, error) {
	if bytes < 0 {
		return nil, fmt.Errorf("arena %s: size %d", name, bytes)
	}
	bytes = max(alignUp(bytes), ArenaAlign)
	mem, err := dev.Alloc(bytes)
	if err != nil {
		return nil, fmt.Errorf("arena %s: %w", name, err)
	}
	return &Arena{dev: dev, name: name, mem: mem, size: bytes}, nil
}

// alignUp rounds bytes up to the arena alignment.
func alignUp(bytes int) int { return (bytes + ArenaAlign - 1) / ArenaAlign * ArenaAlign }

// ArenaBytes returns how many bytes an arena needs for views of the given
// sizes in bytes, taken in order.
func ArenaBytes(sizes ...int) int {
	total := 0
	for _, s := range sizes {
		total += alignUp(s)
	}
	return total
}

// FloatBytes is the size of n float32 values.
func FloatBytes(n int) int { return 4 * n }

// take carves the next size bytes.
func (a *Arena) take(bytes int) (int, error) {
	if a.mem == nil {
		return 0, fmt.Errorf("arena %s has been freed", a.name)
	}
	need := alignUp(bytes)
	if bytes < 0 || a.used+need > a.size {
		return 0, fmt.Errorf("arena %s is full: %d of %d bytes used, %d more asked for", a.name, a.used, a.size, bytes)
	}
	at := a.used
	a.used += need
	return at, nil
}

// Take returns a buffer of n float32 values from the arena. Its contents
// are whatever the arena held: zero when the arena is new.
func (a *Arena) Take(n int) (Buffer, error) {
	at, err := a.take(4 * n)
	if err != nil {
		return Buffer{}, err
	}
	return Buffer{view{a.mem, at / 4, n}}, nil
}

// TakeInts returns n int32 values from the arena.
func (a *Arena) TakeInts(n int) (Ints, error) {
	at, err := a.take(4 * n)
	if err != nil {
		return Ints{}, err
	}
	return Ints{view{a.mem, at / 4, n}}, nil
}

// TakeScalars returns n float64 values from the arena.
func (a *Arena) TakeScalars(n int) (Scalars, error) {
	at, err := a.take(8 * n)
	if err != nil {
		return Scalars{}, err
	}
	return Scalars{view{a.mem, at / 8, n}}, nil
}

// Used is the number of bytes taken so far.
func (a *Arena) Used() int { return a.used }

// Size is the arena's capacity in bytes.
func (a *Arena) Size() int { return a.size }

// Release gives back everything taken after Used returned mark.
func (a *Arena) Release(mark int) {
	if mark >= 0 && mark <= a.used {
		a.used = mark
	}
}

// Reset gives back everything taken.
func (a *Arena) Reset() { a.used = 0 }

// Floats returns the taken part of the arena as one buffer of float32
// values (padding between views included): what whole-arena operations
// such as Device.SGD and Device.SumSquares run over.
func (a *Arena) Floats() Buffer { return Buffer{view{a.mem, 0, a.used / 4}} }

// Free returns the arena's memory to the device; the arena and every view
// taken from it must not be used again.
func (a *Arena) Free() error {
	if a.mem == nil {
		return nil
	}
	err := a.dev.Free(a.mem)
	a.mem, a.used = nil, 0
	if err != nil {
		return fmt.Errorf("arena %s: %w", a.name, err)
	}
	return nil
}
