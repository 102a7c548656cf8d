//go:build gpuemu

package cudaemu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The batch norm kernels of norm.cu against float64 references: training
// (statistics, running statistics, the fused ReLU and residual add),
// evaluation and backward, on channel counts below, at and across the
// 32-channel blocks and row counts over several chunks, on both schedules.

type bnCase struct {
	rows, c        int
	relu, residual bool
	eps, momentum  float32
	mean, sd       float64
	tolY           float64 // bound on y's error; 0: 1e-5
}

var bnCases = []bnCase{
	{rows: 1, c: 1, eps: 1e-5, momentum: 0.1, mean: 0, sd: 1},
	{rows: 3, c: 3, relu: true, eps: 1e-5, momentum: 0.1, mean: 1, sd: 2},
	{rows: 37, c: 33, relu: true, residual: true, eps: 1e-5, momentum: 0.1, mean: 3, sd: 0.5},
	{rows: 300, c: 64, eps: 1e-3, momentum: 0.3, mean: -2, sd: 1},
	// Mean 500 standard deviations from 0: the float32 mean alone, saved for
	// the backward pass, is off by up to 500 x 6e-8 = 3e-5 standard
	// deviations.
	{rows: 1100, c: 5, relu: true, eps: 1e-5, momentum: 0.1, mean: 50, sd: 0.1, tolY: 1e-4},
	{rows: 130, c: 72, residual: true, eps: 1e-5, momentum: 0.1, mean: 0.5, sd: 3},
}

// bnRef is the float64 training forward pass: batch mean, biased
// variance, y, and the new running statistics.
func bnRef(cs bnCase, x, gamma, beta, r, rm, rv []float32) (mean, invStd, y, newRM, newRV []float64) {
	rows, c := cs.rows, cs.c
	mean, invStd = make([]float64, c), make([]float64, c)
	newRM, newRV = make([]float64, c), make([]float64, c)
	y = make([]float64, rows*c)
	for j := range c {
		s := 0.0
		for i := range rows {
			s += float64(x[i*c+j])
		}
		m := s / float64(rows)
		v := 0.0
		for i := range rows {
			d := float64(x[i*c+j]) - m
			v += d * d
		}
		unbiased := v
		if rows > 1 {
			unbiased = v / float64(rows-1)
		}
		v /= float64(rows)
		mean[j], invStd[j] = m, 1/math.Sqrt(v+float64(cs.eps))
		mo := float64(cs.momentum)
		newRM[j] = (1-mo)*float64(rm[j]) + mo*m
		newRV[j] = (1-mo)*float64(rv[j]) + mo*unbiased
		for i := range rows {
			o := (float64(x[i*c+j])-m)*invStd[j]*float64(gamma[j]) + float64(beta[j])
			if r != nil {
				o += float64(r[i*c+j])
			}
			if cs.relu {
				o = math.Max(o, 0)
			}
			y[i*c+j] = o
		}
	}
	return mean, invStd, y, newRM, newRV
}

func TestBatchNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	errs := errTable{}
	for _, rev := range schedules {
		d := dev{t, rev}
		for _, cs := range bnCases {
			rows, c := cs.rows, cs.c
			name := sizes("%dx%d relu=%v res=%v %s", rows, c, cs.relu, cs.residual, scheduleName(rev))
			x := randn(rng, rows*c, cs.mean, cs.sd)
			gamma, beta := randn(rng, c, 1, 0.3), randn(rng, c, 0, 0.3)
			rm0, rv0 := randn(rng, c, 0, 1), randn(rng, c, 1, 0.1)
			var r []float32
			rb := buffer[float32]{}
			if cs.residual {
				r = randn(rng, rows*c, 0, 1)
				rb = upload(t, r)
			}
			xb, gb, bb := upload(t, x), upload(t, gamma), upload(t, beta)
			rm, rv := upload(t, rm0), upload(t, rv0)
			mean, invStd, y := alloc[float32](t, c), alloc[float32](t, c), alloc[float32](t, rows*c)
			ss := alloc[float32](t, 3*c)
			chunkRows, chunks := colReduceChunk(rows, c)
			part := alloc[float64](t, 2*c*chunks)
			cb := (c + 31) / 32
			reluArg := i32(0)
			if cs.relu {
				reluArg = i32(1)
			}

			d.run("bn_stats_partial", [3]int{cb, chunks, 1}, ptr(xb), i32(rows), i32(c), i32(chunkRows), ptr(part))
			d.run("bn_stats_finish", grid1(cb), ptr(part), i32(chunks), i32(rows), i32(c), ptr(xb), ptr(gb), ptr(bb),
				f32(cs.eps), f32(cs.momentum), ptr(rm), ptr(rv), ptr(mean), ptr(invStd), ptr(ss))
			d.run("bn_apply", flatGrid(rows*c), ptr(xb), i32(rows), i32(c), ptr(ss), ptr(rb), reluArg, ptr(y))

			wMean, wInv, wY, wRM, wRV := bnRef(cs, x, gamma, beta, r, rm0, rv0)
			errs.note("bn train: mean", checkClose(t, name+" mean", mean.get(), wMean, 1e-6))
			errs.note("bn train: invStd", checkClose(t, name+" invStd", invStd.get(), wInv, 1e-5))
			errs.note("bn train: running mean", checkClose(t, name+" running mean", rm.get(), wRM, 1e-6))
			errs.note("bn train: running var", checkClose(t, name+" running var", rv.get(), wRV, 1e-5))
			tolY := cs.tolY
			if tolY == 0 {
				tolY = 1e-5
			}
			errs.note("bn train: y", checkClose(t, name+" y", y.get(), wY, tolY))

			// Evaluation with the running statistics, in place (y = x).
			yEval := upload(t, x)
			d.run("bn_eval_prepare", grid1((c+255)/256), ptr(gb), ptr(bb), ptr(rm), ptr(rv), i32(c), f32(cs.eps), ptr(ss))
			d.run("bn_apply", flatGrid(rows*c), ptr(yEval), i32(rows), i32(c), ptr(ss), ptr(rb), reluArg, ptr(yEval))
			rmv, rvv := rm.get(), rv.get()
			wEval := make([]float64, rows*c)
			for i := range wEval {
				j := i % c
				o := (float64(x[i])-float64(rmv[j]))/math.Sqrt(float64(rvv[j])+float64(cs.eps))*float64(gamma[j]) + float64(beta[j])
				if r != nil {
					o += float64(r[i])
				}
				if cs.relu {
					o = math.Max(o, 0)
				}
				wEval[i] = o
			}
			errs.note("bn eval: y", checkClose(t, name+" eval y", yEval.get(), wEval, 1e-5))

			// Backward from the forward's outputs.
			yv, mv, iv := y.get(), mean.get(), invStd.get()
			dy := randn(rng, rows*c, 0, 1)
			dg0, db0 := randn(rng, c, 0, 1), randn(rng, c, 0, 1)
			dyb, dg, db := upload(t, dy), upload(t, dg0), upload(t, db0)
			dx, coef := alloc[float32](t, rows*c), alloc[float32](t, 3*c)
			yArg, dr := null, buffer[float32]{}
			if cs.relu {
				yArg = ptr(y)
			}
			if cs.residual {
				dr = alloc[float32](t, rows*c)
			}
			d.run("bn_backward_partial", [3]int{cb, chunks, 1}, ptr(xb), yArg, ptr(dyb), i32(rows), i32(c), i32(chunkRows),
				ptr(mean), ptr(invStd), ptr(part))
			d.run("bn_backward_finish", grid1(cb), ptr(part), i32(chunks), i32(rows), i32(c), ptr(gb), ptr(invStd),
				ptr(dg), ptr(db), ptr(coef))
			d.run("bn_backward_apply", flatGrid(rows*c), ptr(xb), yArg, ptr(dyb), i32(rows), i32(c), ptr(mean),
				ptr(invStd), ptr(coef), ptr(dx), ptr(dr))

			wDX, wDG, wDB, wDR := make([]float64, rows*c), make([]float64, c), make([]float64, c), make([]float64, rows*c)
			for j := range c {
				sg, sgx := 0.0, 0.0
				g := make([]float64, rows)
				xh := make([]float64, rows)
				for i := range rows {
					g[i] = float64(dy[i*c+j])
					if cs.relu && yv[i*c+j] == 0 {
						g[i] = 0
					}
					xh[i] = (float64(x[i*c+j]) - float64(mv[j])) * float64(iv[j])
					sg += g[i]
					sgx += g[i] * xh[i]
				}
				wDB[j] = float64(db0[j]) + sg
				wDG[j] = float64(dg0[j]) + sgx
				for i := range rows {
					wDX[i*c+j] = float64(gamma[j]) * float64(iv[j]) * (g[i] - sg/float64(rows) - xh[i]*sgx/float64(rows))
					wDR[i*c+j] = g[i]
				}
			}
			errs.note("bn backward: dx", checkClose(t, name+" dx", dx.get(), wDX, 1e-5))
			errs.note("bn backward: dgamma", checkClose(t, name+" dgamma", dg.get(), wDG, 1e-5))
			errs.note("bn backward: dbeta", checkClose(t, name+" dbeta", db.get(), wDB, 1e-6))
			if cs.residual {
				checkClose(t, name+" dr", dr.get(), wDR, 0)
			}
		}
	}
	errs.log(t)
}

func TestBatchNormSchedules(t *testing.T) {
	// Many chunks, two channel blocks: training and backward give the same
	// bits on both schedules.
	rng := rand.New(rand.NewPCG(23, 24))
	const rows, c = 900, 40
	x, dy := randn(rng, rows*c, 1, 2), randn(rng, rows*c, 0, 1)
	gamma, beta := randn(rng, c, 1, 0.3), randn(rng, c, 0, 0.3)
	var outs [2][][]float32
	for k, rev := range schedules {
		d := dev{t, rev}
		xb, gb, bb, dyb := upload(t, x), upload(t, gamma), upload(t, beta), upload(t, dy)
		rm, rv := upload(t, make([]float32, c)), upload(t, make([]float32, c))
		mean, invStd, y, ss := alloc[float32](t, c), alloc[float32](t, c), alloc[float32](t, rows*c), alloc[float32](t, 3*c)
		dg, db := upload(t, make([]float32, c)), upload(t, make([]float32, c))
		dx, coef := alloc[float32](t, rows*c), alloc[float32](t, 3*c)
		chunkRows, chunks := colReduceChunk(rows, c)
		part := alloc[float64](t, 2*c*chunks)
		d.run("bn_stats_partial", [3]int{2, chunks, 1}, ptr(xb), i32(rows), i32(c), i32(chunkRows), ptr(part))
		d.run("bn_stats_finish", grid1(2), ptr(part), i32(chunks), i32(rows), i32(c), ptr(xb), ptr(gb), ptr(bb),
			f32(1e-5), f32(0.1), ptr(rm), ptr(rv), ptr(mean), ptr(invStd), ptr(ss))
		d.run("bn_apply", grid1(3), ptr(xb), i32(rows), i32(c), ptr(ss), null, i32(1), ptr(y))
		d.run("bn_backward_partial", [3]int{2, chunks, 1}, ptr(xb), ptr(y), ptr(dyb), i32(rows), i32(c), i32(chunkRows),
			ptr(mean), ptr(invStd), ptr(part))
		d.run("bn_backward_finish", grid1(2), ptr(part), i32(chunks), i32(rows), i32(c), ptr(gb), ptr(invStd),
			ptr(dg), ptr(db), ptr(coef))
		d.run("bn_backward_apply", grid1(3), ptr(xb), ptr(y), ptr(dyb), i32(rows), i32(c), ptr(mean),
			ptr(invStd), ptr(coef), ptr(dx), null)
		outs[k] = [][]float32{mean.get(), invStd.get(), rm.get(), rv.get(), y.get(), dg.get(), db.get(), dx.get()}
	}
	for i := range outs[0] {
		sameBits(t, sizes("output %d on the two schedules", i), outs[0][i], outs[1][i])
	}
}
