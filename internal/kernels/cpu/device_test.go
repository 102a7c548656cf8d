package cpu

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
)

// TestConformance runs the device conformance suite on the CPU device:
// the fastest kernels on three workers, and (without -short) the portable
// kernels on one.
func TestConformance(t *testing.T) {
	variants := []struct {
		name string
		opt  kernels.CPUOptions
	}{{"fast-3", kernels.CPUOptions{Workers: 3}}, {"portable-1", kernels.CPUOptions{Workers: 1, Portable: true}}}
	if testing.Short() {
		variants = variants[:1]
	}
	for _, c := range variants {
		t.Run(c.name, func(t *testing.T) {
			kerneltest.Run(t, func(t *testing.T) kernels.Device {
				d, err := NewDevice(c.opt)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}, kerneltest.Options{Tol: kerneltest.CPUTolerances()})
		})
	}
}

// TestConvIsDeterministicAcrossWorkers checks that the convolution's three
// products give the same bits with 1 and 3 workers, on a shape that takes
// the k-split for the filter gradient and one that does not.
func TestConvIsDeterministicAcrossWorkers(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, g := range []kernels.ConvGeom{
		{N: 70, C: 8, H: 28, W: 28, K: 16, R: 3, S: 3, Stride: 1, Pad: 1}, // 54880 pixels: k-split
		{N: 9, C: 24, H: 6, W: 6, K: 40, R: 3, S: 3, Stride: 1, Pad: 1},   // few pixels: column split
	} {
		x := randomVec(rng, g.InLen(), -1, 1)
		w := randomVec(rng, g.FilterLen(), -1, 1)
		dy := randomVec(rng, g.OutLen(), -1, 1)
		var ref [][]float32
		for _, workers := range []int{1, 3} {
			d, err := NewDevice(kernels.CPUOptions{Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			a, err := kernels.NewArena(d, "test", kernels.ArenaBytes(4*len(x), 4*len(w), 4*len(dy), 4*len(dy), 4*len(x), 4*len(w)))
			if err != nil {
				t.Fatal(err)
			}
			take := func(v []float32) kernels.Buffer {
				b, err := a.Take(len(v))
				if err != nil {
					t.Fatal(err)
				}
				d.Upload(b, v)
				return b
			}
			xb, wb, dyb := take(x), take(w), take(dy)
			y, dx, dw := take(make([]float32, len(dy))), take(make([]float32, len(x))), take(make([]float32, len(w)))
			d.Conv2D(g, xb, wb, y)
			d.Conv2DBackward(kernels.ConvBackward{Geom: g, X: xb, W: wb, DY: dyb, DX: dx, DW: dw})
			var got [][]float32
			for _, b := range []kernels.Buffer{y, dx, dw} {
				v := make([]float32, b.Len())
				if err := d.Download(v, b); err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			if ref == nil {
				ref = got
				continue
			}
			for i := range got {
				if !slices.Equal(got[i], ref[i]) {
					t.Fatalf("%v: output %d differs between 1 and %d workers", g, i, workers)
				}
			}
		}
	}
}
