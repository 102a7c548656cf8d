//go:build gpuemu

package cudaemu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

// The kernels of elementwise.cu against float64 references, on sizes that
// straddle the 4-value quads, the 1024-value passes and the 8192-value
// chunks, with aligned and misaligned pointers (the quad and the scalar
// paths), on both schedules.

// flatSizes are element counts for the flat kernels.
var flatSizes = []int{1, 3, 5, 1023, 4097}

// misalign returns a buffer of n values whose address is 4 bytes past a
// 16-byte boundary (the scalar path), holding v when v is not nil.
func misalign(t *testing.T, n int, v []float32) buffer[float32] {
	b := alloc[float32](t, n+1)
	m := buffer[float32]{b.p + 4, n}
	if v != nil {
		m.set(v)
	}
	return m
}

// flatBuf returns a buffer of v, aligned or not.
func flatBuf(t *testing.T, v []float32, aligned bool) buffer[float32] {
	if aligned {
		return upload(t, v)
	}
	return misalign(t, len(v), v)
}

func TestFlatKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rev := range schedules {
		d := dev{t, rev}
		for _, n := range flatSizes {
			for _, aligned := range []bool{true, false} {
				name := sizes("n=%d aligned=%v %s", n, aligned, scheduleName(rev))
				a, b := randn(rng, n, 0, 1), randn(rng, n, 0, 1)
				// A few exact zeros, as a ReLU makes them.
				for i := 0; i < n; i += 7 {
					a[i] = 0
				}
				grid := flatGrid(n)
				if n > 1024 {
					grid = grid1(2) // fewer blocks than passes: the grid stride
				}
				y := flatBuf(t, make([]float32, n), aligned)

				d.run("fill_f32", grid, ptr(y), i64(n), f32(-2.5))
				want := make([]float64, n)
				for i := range want {
					want[i] = -2.5
				}
				checkClose(t, name+" fill", y.get(), want, 0)

				ab := flatBuf(t, a, aligned)
				y = flatBuf(t, numcheck.NaNs(n), aligned)
				d.run("copy_f32", grid, ptr(y), ptr(ab), i64(n))
				checkClose(t, name+" copy", y.get(), wide(a), 0)

				y = flatBuf(t, numcheck.NaNs(n), aligned)
				d.run("relu_f32", grid, ptr(ab), ptr(y), i64(n))
				for i, v := range a {
					want[i] = math.Max(float64(v), 0)
				}
				checkClose(t, name+" relu", y.get(), want, 0)
				// in place
				yb := flatBuf(t, a, aligned)
				d.run("relu_f32", grid, ptr(yb), ptr(yb), i64(n))
				checkClose(t, name+" relu in place", yb.get(), want, 0)
				relu := yb.get()

				bb := flatBuf(t, b, aligned)
				y = flatBuf(t, numcheck.NaNs(n), aligned)
				d.run("relu_backward_f32", grid, ptr(yb), ptr(bb), ptr(y), i64(n))
				for i, v := range relu {
					want[i] = 0
					if v != 0 {
						want[i] = float64(b[i])
					}
				}
				checkClose(t, name+" relu backward", y.get(), want, 0)

				y = flatBuf(t, numcheck.NaNs(n), aligned)
				d.run("add_f32", grid, ptr(ab), ptr(bb), ptr(y), i64(n))
				for i := range a {
					want[i] = float64(a[i] + b[i])
				}
				checkClose(t, name+" add", y.get(), want, 0)
				d.run("add_f32", grid, ptr(ab), ptr(bb), ptr(ab), i64(n)) // y = a
				checkClose(t, name+" add in place", ab.get(), want, 0)
			}
		}
	}
}

func TestBiasAddAndSumRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	errs := errTable{}
	for _, rev := range schedules {
		d := dev{t, rev}
		for _, sh := range [][2]int{{1, 1}, {7, 13}, {33, 64}, {300, 5}, {1000, 33}} {
			rows, cols := sh[0], sh[1]
			name := sizes("%dx%d %s", rows, cols, scheduleName(rev))
			y0, bias := randn(rng, rows*cols, 0, 1), randn(rng, cols, 0, 1)
			y := upload(t, y0)
			bb := upload(t, bias)
			d.run("bias_add_f32", flatGrid(rows*cols), ptr(y), i32(rows), i32(cols), ptr(bb))
			want := make([]float64, rows*cols)
			for i := range want {
				want[i] = float64(y0[i] + bias[i%cols])
			}
			checkClose(t, name+" bias add", y.get(), want, 0)

			// SumRows: db += column sums, through partials when there are
			// several chunks, else directly.
			dy := randn(rng, rows*cols, 0.5, 1)
			db0 := randn(rng, cols, 0, 1)
			dyb, db := upload(t, dy), upload(t, db0)
			chunkRows, chunks := colReduceChunk(rows, cols)
			part := alloc[float64](t, chunks*cols)
			cb := (cols + 31) / 32
			if chunks == 1 {
				d.run("sum_rows_partial", [3]int{cb, 1, 1}, ptr(dyb), i32(rows), i32(cols), i32(chunkRows), null, ptr(db), i32(1))
			} else {
				d.run("sum_rows_partial", [3]int{cb, chunks, 1}, ptr(dyb), i32(rows), i32(cols), i32(chunkRows), ptr(part), null, i32(0))
				d.run("sum_rows_finish", grid1(cb), ptr(part), i32(chunks), i32(cols), ptr(db))
			}
			wantDB := make([]float64, cols)
			for j := range cols {
				s := 0.0
				for r := range rows {
					s += float64(dy[r*cols+j])
				}
				wantDB[j] = float64(db0[j]) + s
			}
			errs.note("sum_rows", checkClose(t, name+" sum rows", db.get(), wantDB, 1e-6))
		}
	}
	errs.log(t)
}

func TestSumRowsSchedules(t *testing.T) {
	// Several chunks and column blocks: the same bits on both schedules.
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 700, 70
	dy := randn(rng, rows*cols, 0, 1)
	var got [2][]float32
	for k, rev := range schedules {
		d := dev{t, rev}
		dyb, db := upload(t, dy), upload(t, make([]float32, cols))
		chunkRows, chunks := colReduceChunk(rows, cols)
		if chunks < 2 {
			t.Fatalf("want several chunks, got %d", chunks)
		}
		part := alloc[float64](t, chunks*cols)
		d.run("sum_rows_partial", [3]int{3, chunks, 1}, ptr(dyb), i32(rows), i32(cols), i32(chunkRows), ptr(part), null, i32(0))
		d.run("sum_rows_finish", grid1(3), ptr(part), i32(chunks), i32(cols), ptr(db))
		got[k] = db.get()
	}
	sameBits(t, "sum_rows on the two schedules", got[0], got[1])
}

func TestGlobalAvgPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, rev := range schedules {
		d := dev{t, rev}
		for _, sh := range [][3]int{{1, 1, 1}, {3, 9, 5}, {2, 16, 64}, {5, 4, 7}} {
			n, hw, c := sh[0], sh[1], sh[2]
			name := sizes("n=%d hw=%d c=%d %s", n, hw, c, scheduleName(rev))
			x, dy := randn(rng, n*hw*c, 0, 1), randn(rng, n*c, 0, 1)
			want, wantDX := kerneltest.PoolRef(n, hw, c, x, dy)
			xb, y := upload(t, x), alloc[float32](t, n*c)
			d.run("gap_forward_f32", grid1((n*c+255)/256), ptr(xb), i32(n), i32(hw), i32(c), ptr(y))
			checkClose(t, name+" forward", y.get(), want, 1e-6)

			dyb, dx := upload(t, dy), alloc[float32](t, n*hw*c)
			d.run("gap_backward_f32", flatGrid(n*hw*c), ptr(dyb), i32(n), i32(hw), i32(c), ptr(dx))
			checkClose(t, name+" backward", dx.get(), wantDX, 1e-7)
		}
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, rev := range schedules {
		d := dev{t, rev}
		for _, sh := range [][2]int{{1, 1}, {9, 10}, {33, 37}, {17, 100}} {
			rows, classes := sh[0], sh[1]
			name := sizes("%dx%d %s", rows, classes, scheduleName(rev))
			logits := randn(rng, rows*classes, 0, 3)
			labels, labels32 := make([]int, rows), make([]int32, rows)
			for i := range labels {
				labels[i] = rng.IntN(classes)
				labels32[i] = int32(labels[i])
			}
			lb, yb := upload(t, logits), upload(t, labels32)
			dl, rowLoss, loss := alloc[float32](t, rows*classes), alloc[float64](t, rows), alloc[float64](t, 1)
			d.run("softmax_xent_f32", grid1((rows+7)/8), ptr(lb), i32(rows), i32(classes), ptr(yb), ptr(dl), ptr(rowLoss))
			d.run("reduce_f64", grid1(1), ptr(rowLoss), i32(rows), f64(1/float64(rows)), ptr(loss))
			mean, want := kerneltest.SoftmaxCERef(rows, classes, logits, labels)
			checkClose(t, name+" loss", loss.get(), []float64{mean}, 1e-12)
			checkClose(t, name+" dlogits", dl.get(), want, 1e-6)
		}
	}
	// A label out of range gives a NaN loss, not a read out of bounds.
	d := dev{t, false}
	lb, yb := upload(t, []float32{1, 2}), upload(t, []int32{2})
	dl, rowLoss := alloc[float32](t, 2), alloc[float64](t, 1)
	d.run("softmax_xent_f32", grid1(1), ptr(lb), i32(1), i32(2), ptr(yb), ptr(dl), ptr(rowLoss))
	if v := rowLoss.get()[0]; !math.IsNaN(v) {
		t.Errorf("label 2 of 2 classes: loss %v, want NaN", v)
	}
}

func TestSumSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, rev := range schedules {
		d := dev{t, rev}
		for _, n := range []int{1, 5, 8191, 8193, 20000} {
			for _, aligned := range []bool{true, false} {
				name := sizes("n=%d aligned=%v %s", n, aligned, scheduleName(rev))
				x := randn(rng, n, 0.1, 1)
				xb := flatBuf(t, x, aligned)
				blocks := (n + 8191) / 8192
				part, out := alloc[float64](t, blocks), alloc[float64](t, 1)
				d.run("sum_squares_partial", grid1(blocks), ptr(xb), i64(n), ptr(part))
				d.run("reduce_f64", grid1(1), ptr(part), i32(blocks), f64(1), ptr(out))
				s := 0.0
				for _, v := range x {
					s += float64(v) * float64(v)
				}
				checkClose(t, name, out.get(), []float64{s}, 1e-13)
			}
		}
	}
}

func TestSGD(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const lr, mom, decay = 0.1, 0.9, 5e-4
	for _, rev := range schedules {
		d := dev{t, rev}
		for _, n := range []int{1, 7, 1001, 4099} {
			for _, aligned := range []bool{true, false} {
				name := sizes("n=%d aligned=%v %s", n, aligned, scheduleName(rev))
				w0, g, v0 := randn(rng, n, 0, 1), randn(rng, n, 0, 1), randn(rng, n, 0, 1)
				w, gb, v := flatBuf(t, w0, aligned), flatBuf(t, g, aligned), flatBuf(t, v0, aligned)
				guard := upload(t, []float64{1.5, 42})
				d.run("sgd_f32", flatGrid(n), ptr(w), ptr(gb), ptr(v), i64(n), f32(lr), f32(mom), f32(decay), ptr(guard), i32(2))
				wantW, wantV := make([]float64, n), make([]float64, n)
				for i := range n {
					vi := mom*float64(v0[i]) + (float64(g[i]) + decay*float64(w0[i]))
					wantV[i] = vi
					wantW[i] = float64(w0[i]) - lr*vi
				}
				checkClose(t, name+" w", w.get(), wantW, 1e-6)
				checkClose(t, name+" v", v.get(), wantV, 1e-6)

				// A non-finite guard value: nothing moves.
				for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
					wb, vb := w.get(), v.get()
					guard.set([]float64{0.5, bad})
					d.run("sgd_f32", flatGrid(n), ptr(w), ptr(gb), ptr(v), i64(n), f32(lr), f32(mom), f32(decay), ptr(guard), i32(2))
					sameBits(t, name+" w after a bad guard", wb, w.get())
					sameBits(t, name+" v after a bad guard", vb, v.get())
				}
			}
		}
	}
}
