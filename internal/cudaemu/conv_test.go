//go:build gpuemu

package cudaemu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
)

// The kernels of conv.cu against float64 references: the forward pass, the
// input gradient and the filter gradient (one slice added directly, and
// several slices through the workspace and conv_wgrad_reduce), both
// precisions, both tiles and both load widths, on the encoders' geometries
// (3x3 stride 1 and 2 pad 1, 1x1 stride 1 and 2 pad 0) with channel counts
// of 1 and 3 (the stems), sizes that straddle the 128-row and 64- or
// 128-column tiles, odd image sides and a bottleneck's 1x1 -> 3x3 -> 1x1.

// convArgs is a convolution's shape as the kernels take it, after their
// three pointers.
func convArgs(g kernels.ConvGeom) []uint64 {
	return []uint64{i32(g.N), i32(g.C), i32(g.H), i32(g.W), i32(g.K), i32(g.R), i32(g.S), i32(g.Stride), i32(g.Pad)}
}

var convCases = []kernels.ConvGeom{
	{N: 2, C: 3, H: 5, W: 5, K: 5, R: 3, S: 3, Stride: 1, Pad: 1},     // a stem: C = 3
	{N: 1, C: 1, H: 7, W: 6, K: 3, R: 3, S: 3, Stride: 2, Pad: 1},     // C = 1, stride 2, odd sides
	{N: 2, C: 16, H: 9, W: 9, K: 68, R: 3, S: 3, Stride: 1, Pad: 1},   // 162 pixels, K past 64, 144 taps
	{N: 3, C: 12, H: 6, W: 7, K: 20, R: 3, S: 3, Stride: 2, Pad: 1},   // stride 2, uneven phases
	{N: 2, C: 36, H: 9, W: 9, K: 44, R: 1, S: 1, Stride: 1, Pad: 0},   // 1x1
	{N: 2, C: 20, H: 8, W: 9, K: 24, R: 1, S: 1, Stride: 2, Pad: 0},   // 1x1 stride 2: phases without taps
	{N: 1, C: 132, H: 4, W: 4, K: 8, R: 1, S: 1, Stride: 1, Pad: 0},   // bottleneck 1x1 in: C past 128
	{N: 1, C: 8, H: 4, W: 4, K: 132, R: 1, S: 1, Stride: 1, Pad: 0},   // bottleneck 1x1 out: K past 128
	{N: 1, C: 8, H: 4, W: 4, K: 8, R: 3, S: 3, Stride: 1, Pad: 1},     // bottleneck 3x3
	{N: 5, C: 4, H: 1, W: 1, K: 4, R: 3, S: 3, Stride: 2, Pad: 1},     // 1x1 images, stride 2
	{N: 1, C: 2, H: 3, W: 3, K: 3, R: 3, S: 3, Stride: 1, Pad: 0},     // no padding: one output pixel
	{N: 2, C: 4, H: 33, W: 31, K: 4, R: 3, S: 3, Stride: 2, Pad: 1},   // phases of 17 x 16 x 2 = 544 pixels
	{N: 1, C: 24, H: 16, W: 16, K: 12, R: 3, S: 3, Stride: 1, Pad: 1}, // 256 pixels: two full row tiles
}

// wgradChunk is the host's choice of pixels per slice of the filter
// gradient (conv.cu).
func wgradChunk(g kernels.ConvGeom, bn int) (kChunk, splits int) {
	kr := g.N * g.OutH() * g.OutW()
	tiles := (g.R*g.S*g.C + 127) / 128 * ((g.K + bn - 1) / bn)
	splits = min(max((512+tiles-1)/tiles, 1), max((kr+511)/512, 1))
	per := (kr + splits - 1) / splits
	kChunk = (per + 15) / 16 * 16
	return kChunk, (kr + kChunk - 1) / kChunk
}

var convTol = map[string]float64{"fp32": 1e-5, "tf32": 2e-3}

func TestConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	errs := errTable{}
	for ci, g := range convCases {
		P, Q := g.OutH(), g.OutW()
		x := randn(rng, g.N*g.H*g.W*g.C, 0, 1)
		w := randn(rng, g.R*g.S*g.C*g.K, 0, 1)
		dy := randn(rng, g.N*P*Q*g.K, 0, 1)
		dw0 := randn(rng, g.R*g.S*g.C*g.K, 0, 1)
		wantY, wantDX, wantDW := kerneltest.ConvRef(g, x, w, dy)
		for i := range wantDW {
			wantDW[i] += float64(dw0[i])
		}
		xb, wb, dyb := upload(t, x), upload(t, w), upload(t, dy)
		vecs := []string{"s1"}
		if g.C%4 == 0 && g.K%4 == 0 {
			vecs = append(vecs, "v4")
		}
		for _, prec := range []string{"fp32", "tf32"} {
			for _, tile := range []string{"128x128", "128x64"} {
				bn := 128
				if tile == "128x64" {
					bn = 64
				}
				for vi, vec := range vecs {
					d := dev{t, (ci+vi)%2 == 1}
					suffix := prec + "_" + tile + "_" + vec
					name := fmt.Sprintf("%v %s %s", g, suffix, scheduleName(d.rev))
					tol := convTol[prec]

					y := alloc[float32](t, len(wantY))
					d.run("conv_fprop_"+suffix, [3]int{(g.K + bn - 1) / bn, (g.N*P*Q + 127) / 128, 1},
						append([]uint64{ptr(xb), ptr(wb), ptr(y)}, convArgs(g)...)...)
					errs.note("conv_fprop_"+prec, checkClose(t, name+" fprop", y.get(), wantY, tol))

					dx := alloc[float32](t, len(wantDX))
					hp, wp := (g.H+g.Stride-1)/g.Stride, (g.W+g.Stride-1)/g.Stride
					d.run("conv_dgrad_"+suffix, [3]int{(g.C + bn - 1) / bn, (g.N*hp*wp + 127) / 128, g.Stride * g.Stride},
						append([]uint64{ptr(dyb), ptr(wb), ptr(dx)}, convArgs(g)...)...)
					errs.note("conv_dgrad_"+prec, checkClose(t, name+" dgrad", dx.get(), wantDX, tol))

					// The filter gradient: the host's slicing, and slices of
					// 16 pixels (several, through the workspace), unless
					// that is the same.
					taps := g.R * g.S * g.C
					grid := func(splits int) [3]int { return [3]int{(g.K + bn - 1) / bn, (taps + 127) / 128, splits} }
					kc, splits := wgradChunk(g, bn)
					chunks := [][2]int{{kc, splits}}
					if kr := g.N * P * Q; splits == 1 && kr > 16 {
						chunks = append(chunks, [2]int{16, (kr + 15) / 16})
					}
					for _, ch := range chunks {
						kc, splits := ch[0], ch[1]
						dwb := upload(t, dw0)
						if splits == 1 {
							d.run("conv_wgrad_"+suffix, grid(1),
								append(append([]uint64{ptr(xb), ptr(dyb), ptr(dwb)}, convArgs(g)...), i32(kc), i32(1))...)
						} else {
							ws := alloc[float32](t, splits*taps*g.K)
							d.run("conv_wgrad_"+suffix, grid(splits),
								append(append([]uint64{ptr(xb), ptr(dyb), ptr(ws)}, convArgs(g)...), i32(kc), i32(0))...)
							d.run("conv_wgrad_reduce", flatGrid(taps*g.K), ptr(ws), i32(splits), i64(taps*g.K), ptr(dwb))
						}
						errs.note("conv_wgrad_"+prec, checkClose(t, fmt.Sprintf("%s wgrad (%d slices)", name, splits), dwb.get(), wantDW, tol))
					}
				}
			}
		}
	}
	errs.log(t)
}

func TestConvSchedules(t *testing.T) {
	// Several blocks in each direction and several slices of the filter
	// gradient: the same bits on both schedules.
	rng := rand.New(rand.NewPCG(43, 44))
	g := kernels.ConvGeom{N: 2, C: 8, H: 9, W: 9, K: 72, R: 3, S: 3, Stride: 2, Pad: 1}
	P, Q := g.OutH(), g.OutW()
	x, w := randn(rng, g.N*g.H*g.W*g.C, 0, 1), randn(rng, g.R*g.S*g.C*g.K, 0, 1)
	dy := randn(rng, g.N*P*Q*g.K, 0, 1)
	taps := g.R * g.S * g.C
	for _, prec := range []string{"fp32", "tf32"} {
		var outs [2][][]float32
		for k, rev := range schedules {
			d := dev{t, rev}
			suffix := prec + "_128x64_v4"
			xb, wb, dyb := upload(t, x), upload(t, w), upload(t, dy)
			y, dx, dw := alloc[float32](t, g.N*P*Q*g.K), alloc[float32](t, len(x)), upload(t, make([]float32, len(w)))
			ws := alloc[float32](t, 4*taps*g.K)
			d.run("conv_fprop_"+suffix, [3]int{2, 1, 1}, append([]uint64{ptr(xb), ptr(wb), ptr(y)}, convArgs(g)...)...)
			d.run("conv_dgrad_"+suffix, [3]int{1, 1, 4}, append([]uint64{ptr(dyb), ptr(wb), ptr(dx)}, convArgs(g)...)...)
			d.run("conv_wgrad_"+suffix, [3]int{2, 1, 4}, append(append([]uint64{ptr(xb), ptr(dyb), ptr(ws)}, convArgs(g)...), i32(16), i32(0))...)
			d.run("conv_wgrad_reduce", grid1(2), ptr(ws), i32(4), i64(taps*g.K), ptr(dw))
			outs[k] = [][]float32{y.get(), dx.get(), dw.get()}
		}
		for i, what := range []string{"y", "dx", "dw"} {
			sameBits(t, prec+" "+what+" on the two schedules", outs[0][i], outs[1][i])
		}
	}
}
