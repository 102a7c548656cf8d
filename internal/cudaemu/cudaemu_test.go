//go:build gpuemu

package cudaemu

import (
	"math"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// buffer is an emulated device allocation of n values of T.
type buffer[T any] struct {
	p uintptr
	n int
}

func alloc[T any](t *testing.T, n int) buffer[T] {
	t.Helper()
	var zero T
	p, err := Alloc(n * int(unsafe.Sizeof(zero)))
	if err != nil {
		t.Fatal(err)
	}
	b := buffer[T]{p, n}
	t.Cleanup(func() { Free(p, n*int(unsafe.Sizeof(zero))) })
	return b
}

func (b buffer[T]) get() []T {
	out := make([]T, b.n)
	CopyOut(unsafe.Pointer(&out[0]), b.p, b.n*int(unsafe.Sizeof(out[0])))
	return out
}

func (b buffer[T]) set(v []T) { CopyIn(b.p, unsafe.Pointer(&v[0]), len(v)*int(unsafe.Sizeof(v[0]))) }

func TestAllocIsPoisoned(t *testing.T) {
	f := alloc[float32](t, 37).get()
	d := alloc[float64](t, 5).get()
	for i, v := range f {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("float32 %d of a fresh allocation is %v, want NaN", i, v)
		}
	}
	for i, v := range d {
		if !math.IsNaN(v) {
			t.Fatalf("float64 %d of a fresh allocation is %v, want NaN", i, v)
		}
	}
	if _, err := Alloc(0); err == nil {
		t.Error("empty allocation accepted")
	}
}

func TestBarrier(t *testing.T) {
	const threads, blocks = 256, 3
	out := alloc[int32](t, threads*blocks)
	if err := Launch("emu_selftest_barrier", [3]int{blocks, 1, 1}, [3]int{threads, 1, 1}, []uint64{uint64(out.p)}); err != nil {
		t.Fatal(err)
	}
	for i, v := range out.get() {
		b, tid := i/threads, i%threads
		if want := int32(threads - 1 - tid + 1000*b); v != want {
			t.Fatalf("block %d thread %d read %d, want %d", b, tid, v, want)
		}
	}
}

func TestShuffle(t *testing.T) {
	f, d := alloc[float32](t, 64), alloc[float64](t, 64)
	for _, mask := range []int{1, 2, 16} {
		if err := Launch("emu_selftest_shuffle", [3]int{1, 1, 1}, [3]int{64, 1, 1}, []uint64{uint64(f.p), uint64(d.p), uint64(mask)}); err != nil {
			t.Fatal(err)
		}
		fs, ds := f.get(), d.get()
		for i := range 64 {
			if j := i ^ mask; fs[i] != float32(j)*1.5 || ds[i] != float64(j)*2.5 {
				t.Fatalf("mask %d: lane %d got %v, %v; want lane %d's", mask, i, fs[i], ds[i], j)
			}
		}
	}
}

func TestDivergentBarrierIsAnError(t *testing.T) {
	out := alloc[int32](t, 64)
	err := Launch("emu_selftest_divergent", [3]int{1, 1, 1}, [3]int{64, 1, 1}, []uint64{uint64(out.p)})
	if err == nil || !strings.Contains(err.Error(), "__syncthreads") {
		t.Fatalf("divergent barrier: %v", err)
	}
	if err := Launch("no_such_kernel", [3]int{1, 1, 1}, [3]int{32, 1, 1}, nil); err == nil {
		t.Error("unknown kernel launched")
	}
	if err := Launch("emu_selftest_barrier", [3]int{1, 1, 1}, [3]int{2048, 1, 1}, []uint64{uint64(out.p)}); err == nil {
		t.Error("2048 threads per block accepted")
	}
}

// tf32 rounds to 10 mantissa bits, nearest, ties away from zero.
func tf32(v float32) float32 {
	u := math.Float32bits(v)
	u = (u + 0x1000) &^ 0x1fff
	return math.Float32frombits(u)
}

func TestWMMA(t *testing.T) {
	a, b, c := alloc[float32](t, 16*8), alloc[float32](t, 8*16), alloc[float32](t, 16*16)
	av, bv := make([]float32, 16*8), make([]float32, 8*16)
	for i := range av {
		av[i] = 1 + float32(i)/1024 + 1.0/(1<<14) // low bits that TF32 drops
	}
	for i := range bv {
		bv[i] = float32(i%7) - 3.25
	}
	a.set(av)
	b.set(bv)
	if err := Launch("emu_selftest_wmma", [3]int{1, 1, 1}, [3]int{32, 1, 1}, []uint64{uint64(a.p), uint64(b.p), uint64(c.p)}); err != nil {
		t.Fatal(err)
	}
	got := c.get()
	for m := range 16 {
		for n := range 16 {
			var want float32
			for k := range 8 {
				want += tf32(av[m*8+k]) * tf32(bv[n*8+k])
			}
			if got[m*16+n] != want {
				t.Fatalf("c[%d][%d] = %v, want %v", m, n, got[m*16+n], want)
			}
		}
	}
	if tf32(av[1]) == av[1] {
		t.Fatal("the inputs should have bits TF32 drops")
	}
}

func TestReversedScheduleExposesRaces(t *testing.T) {
	const n = 64
	var got [2][]int32
	for k, rev := range []bool{false, true} {
		out := alloc[int32](t, n+1)
		out.set(make([]int32, n+1))
		launch := Launch
		if rev {
			launch = LaunchReversed
		}
		if err := launch("emu_selftest_race", [3]int{1, 1, 1}, [3]int{n, 1, 1}, []uint64{uint64(out.p)}); err != nil {
			t.Fatal(err)
		}
		got[k] = out.get()[:n]
	}
	// In order, thread 2i reads its partner before it wrote; reversed,
	// thread 2i + 1 does.
	for i := 0; i < n; i += 2 {
		if got[0][i] != -1 || got[0][i+1] != int32(i) || got[1][i] != int32(i+1) || got[1][i+1] != -1 {
			t.Fatalf("pair %d: in order %v, reversed %v; want [-1 %d] and [%d -1]",
				i, got[0][i:i+2], got[1][i:i+2], i, i+1)
		}
	}
}

func TestCpAsync(t *testing.T) {
	const n = 64
	src := alloc[float32](t, 4*n)
	sv := make([]float32, 4*n)
	for i := range sv {
		sv[i] = float32(i) + 0.5
	}
	src.set(sv)
	out, before := alloc[float32](t, 4*n), alloc[float32](t, n)
	if err := Launch("emu_selftest_cpasync", [3]int{1, 1, 1}, [3]int{n, 1, 1}, []uint64{uint64(src.p), uint64(out.p), uint64(before.p)}); err != nil {
		t.Fatal(err)
	}
	o, b := out.get(), before.get()
	for tid := range n {
		if b[tid] != 7 {
			t.Fatalf("thread %d saw %v before its wait: the copy landed early", tid, b[tid])
		}
		u := (tid + 1) % n
		for i := range 4 {
			want := float32(0)
			if i < u%5 {
				want = sv[4*u+i]
			}
			if got := o[4*tid+i]; got != want {
				t.Fatalf("thread %d value %d = %v, want %v (%d of 4 values read, the rest zeros)", u, i, got, want, u%5)
			}
		}
	}
}

func TestSyncwarp(t *testing.T) {
	out := alloc[int32](t, 96)
	if err := LaunchReversed("emu_selftest_syncwarp", [3]int{1, 1, 1}, [3]int{96, 1, 1}, []uint64{uint64(out.p)}); err != nil {
		t.Fatal(err)
	}
	for i, v := range out.get() {
		if v != int32(100+i/32) {
			t.Fatalf("thread %d read %d, want %d", i, v, 100+i/32)
		}
	}
}

func TestWMMATransposedLayouts(t *testing.T) {
	a, b, c := alloc[float32](t, 8*16), alloc[float32](t, 8*16), alloc[float32](t, 16*16)
	av, bv := make([]float32, 8*16), make([]float32, 8*16)
	for i := range av {
		av[i] = 1 + float32(i)/1024 + 1.0/(1<<14)
		bv[i] = float32(i%5) - 1.75 + 1.0/(1<<15)
	}
	a.set(av)
	b.set(bv)
	if err := Launch("emu_selftest_wmma_t", [3]int{1, 1, 1}, [3]int{32, 1, 1}, []uint64{uint64(a.p), uint64(b.p), uint64(c.p)}); err != nil {
		t.Fatal(err)
	}
	got := c.get()
	for m := range 16 {
		for n := range 16 {
			var want float32
			for k := range 8 {
				want += tf32(av[k*16+m]) * tf32(bv[k*16+n])
			}
			if got[n*16+m] != want {
				t.Fatalf("c[%d][%d] = %v, want %v", m, n, got[n*16+m], want)
			}
		}
	}
}

// TestSourcesAreLinks checks that the kernels the emulator compiles are
// links to internal/kernels/cuda: go build hashes only the files in a
// package's directory, so a link (not a copy, not an include path) is what
// makes it rebuild the emulator when the kernels change.
func TestSourcesAreLinks(t *testing.T) {
	for link, target := range map[string]string{
		"loss_cu.h": "../kernels/cuda/loss.cu", "emu.h": "../kernels/cuda/emu.h", "common.h": "../kernels/cuda/common.h",
		"elementwise_cu.h": "../kernels/cuda/elementwise.cu", "norm_cu.h": "../kernels/cuda/norm.cu",
		"gemm_cu.h": "../kernels/cuda/gemm.cu", "igemm.h": "../kernels/cuda/igemm.h", "conv_cu.h": "../kernels/cuda/conv.cu",
	} {
		got, err := os.Readlink(link)
		if err != nil || got != target {
			t.Errorf("%s: link to %q (%v), want a link to %s", link, got, err, target)
		}
	}
}
