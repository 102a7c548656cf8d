package cpu

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/fused"
)

// LossEngine is the fused loss engine of the CPU: host memory in, host
// memory out. It keeps its scratch memory between calls, so repeated calls of
// one size allocate nothing; it must not be used by two goroutines at once.
type LossEngine struct {
	workers int
	tile    int
	ks      *kernelSet
	// meter, if not nil, counts the scratch memory (a device's meter).
	meter *fused.Meter

	// Buffers kept between calls, grown as needed.
	zs, zt  []float32 // label-sorted Z, padded (np x dp), and its transposed blocks
	rows    fused.RowStats
	scratch []*cpuWorker
	term    []float64 // each sorted row's mean loss term (terms)
}

// cpuWorker is one goroutine's scratch: a similarity tile, the gradient rows
// of the block it owns, and per-row temporaries.
type cpuWorker struct {
	tl                               tile // the tile being swept, over s
	s, dz                            []float32
	maxN, maxP, shN, shP, sumN, sumP []float32
}

// NewLossEngine returns the CPU loss engine.
func NewLossEngine(opt kernels.CPUOptions) (*LossEngine, error) {
	w := opt.Workers
	if w < 0 {
		return nil, fmt.Errorf("workers must be >= 0, got %d", w)
	}
	if w == 0 {
		w = runtime.GOMAXPROCS(0)
	}
	if opt.Tile < 0 || opt.Tile%48 != 0 {
		return nil, fmt.Errorf("tile must be a positive multiple of 48, got %d", opt.Tile)
	}
	return &LossEngine{workers: w, tile: opt.Tile, ks: chooseKernels(opt.Portable)}, nil
}

// Device returns "cpu".
func (c *LossEngine) Device() string { return kernels.DeviceCPU }

// setMeter makes the engine count its scratch memory in m.
func (c *LossEngine) setMeter(m *fused.Meter) {
	c.meter = m
	c.rows.Meter = m
}

// Describe names the kernels and the workers.
func (c *LossEngine) Describe() string {
	return fmt.Sprintf("cpu: %s kernels, %d workers", c.ks.name, c.workers)
}

// tileFor returns the tile side for a batch of n rows.
func (c *LossEngine) tileFor(n int) int {
	switch {
	case c.tile > 0:
		return c.tile
	case n <= 2048:
		return 48
	case n <= 6144:
		return 96
	default:
		return 192
	}
}

// Compute evaluates the loss of embeddings z (n rows of d float32, row-major)
// with the given labels, and when grad is not nil (n x d) writes dL/dZ into
// it. Rows are used as given: callers L2-normalise them.
func (c *LossEngine) Compute(p kernels.Params, z []float32, n, d int, labels []int, grad []float32) (kernels.Result, error) {
	if grad != nil && len(grad) != n*d {
		return kernels.Result{}, fmt.Errorf("gradient buffer holds %d values, want %d", len(grad), n*d)
	}
	sw, anchors, res, done, err := c.forward(p, z, n, d, labels, grad)
	if done {
		return res, err
	}
	st := &c.rows
	var total float64 // sum over anchors of their mean loss term, in row order
	for r, term := range c.terms(sw, p, z) {
		if st.Positives[r] > 0 {
			total += term
		}
	}
	scale := p.Scale()
	res = kernels.Result{Loss: total / float64(anchors) * scale, Anchors: anchors}
	if grad != nil {
		st.GradientParams(sw.supcon, n, anchors, scale)
		sw.grad = grad
		sw.run(sw.backward)
	}
	return res, nil
}

// forward checks a call, sorts and lays out the rows and runs sweep 1: the
// online log-sum-exps over every row's negatives and positives. done says
// that the call needs no sweeps and that res and err are its answer (see
// fused.RowStats.Begin).
func (c *LossEngine) forward(p kernels.Params, z []float32, n, d int, labels []int, grad []float32) (sw *sweep, anchors int, res kernels.Result, done bool, err error) {
	if err := p.Validate(); err != nil {
		return nil, 0, kernels.Result{}, true, err
	}
	if err := kernels.CheckInputs(z, n, d, labels); err != nil {
		return nil, 0, kernels.Result{}, true, err
	}
	st := &c.rows
	t := c.tileFor(n)
	nb := (n + t - 1) / t
	np := nb * t
	dp := (d + 15) &^ 15
	anchors, res, done, err = st.Begin(p, labels, np, grad)
	if done {
		return nil, anchors, res, done, err
	}
	c.layout(z, n, d, t, np, dp)
	st.Resize(np)
	c.workerScratch(t, dp)
	sw = &sweep{c: c, n: n, d: d, t: t, nb: nb, dp: dp, alpha: float32(1 / p.Temperature), supcon: p.Loss == kernels.SupCon}
	sw.run(sw.forward)
	for r := range n {
		st.LseNeg[r] = fused.LSE(st.NegMax[r], st.NegSum[r])
		st.LsePos[r] = fused.LSE(st.PosMax[r], st.PosSum[r])
	}
	return sw, anchors, res, false, nil
}

// terms returns each sorted row's mean loss term over its positives,
// (1/|P(i)|) sum_p l_ip before the scale, meaningful for the anchors; for
// SINCERE and eps-SupInfoNCE it runs sweep 2.
func (c *LossEngine) terms(sw *sweep, p kernels.Params, z []float32) []float64 {
	st, n := &c.rows, sw.n
	c.term = fused.Grow(c.meter, c.term, n)
	out := c.term
	if sw.supcon {
		sumPos := st.PositiveSimilarities(z, sw.d, p.Temperature)
		for r := range n {
			out[r] = 0
			if st.Positives[r] > 0 {
				out[r] = kernels.LogAddExp(st.LseNeg[r], st.LsePos[r]) - sumPos[r]/float64(st.Positives[r])
			}
		}
		return out
	}
	// Sweep 2: l_ip = softplus(u_i - s_ip) - eps with u_i = M_i + eps.
	eps := p.Margin()
	for r := range n {
		st.U[r] = float32(st.LseNeg[r] + eps)
	}
	sw.run(sw.positives)
	for r := range n {
		out[r] = 0
		if st.Positives[r] > 0 {
			out[r] = st.SpSum[r]/float64(st.Positives[r]) - eps
		}
	}
	return out
}

// layout writes the label-sorted, zero-padded copy of z (np x dp) and, per
// block of t rows, its transpose (d x t) for the similarity products.
func (c *LossEngine) layout(z []float32, n, d, t, np, dp int) {
	c.zs = fused.Grow(c.meter, c.zs, np*dp)
	clear(c.zs)
	for k := range n {
		copy(c.zs[k*dp:k*dp+d], z[c.rows.Order[k]*d:c.rows.Order[k]*d+d])
	}
	c.zt = fused.Grow(c.meter, c.zt, np*d)
	for b := 0; b < np; b += t {
		blk := c.zt[b*d : (b+t)*d]
		for j := range t {
			row := c.zs[(b+j)*dp : (b+j)*dp+d]
			for k, v := range row {
				blk[k*t+j] = v
			}
		}
	}
}

// workerScratch returns one scratch set per worker, sized for tiles of side t.
func (c *LossEngine) workerScratch(t, dp int) []*cpuWorker {
	for len(c.scratch) < c.workers {
		c.scratch = append(c.scratch, &cpuWorker{})
	}
	for _, w := range c.scratch {
		w.s = fused.Grow(c.meter, w.s, t*t)
		w.dz = fused.Grow(c.meter, w.dz, t*dp)
		for _, a := range []*[]float32{&w.maxN, &w.maxP, &w.shN, &w.shP, &w.sumN, &w.sumP} {
			*a = fused.Grow(c.meter, *a, t)
		}
	}
	return c.scratch[:c.workers]
}

// sweep is one call's geometry and the work of its three passes over the
// row blocks.
type sweep struct {
	c           *LossEngine
	n, d, t, nb int
	dp          int
	alpha       float32 // 1 / tau
	grad        []float32
	supcon      bool
}

// run calls f for every row block, spread over the workers. Each block is
// done by one worker from start to end, so results do not depend on the
// schedule.
func (sw *sweep) run(f func(w *cpuWorker, blk int)) {
	workers := sw.c.scratch[:sw.c.workers]
	if len(workers) > sw.nb {
		workers = workers[:sw.nb]
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				blk := int(next.Add(1) - 1)
				if blk >= sw.nb {
					return
				}
				f(w, blk)
			}
		}()
	}
	wg.Wait()
}

// similarities computes the tile of row block bi against column block bj
// into w.s, with columns past n set to -Inf, and returns it.
func (sw *sweep) similarities(w *cpuWorker, bi, bj int) *tile {
	t, c := sw.t, sw.c
	c.ks.tile.gemm(t, t, sw.d, sw.alpha, c.zs[bi*t*sw.dp:], sw.dp, c.zt[bj*t*sw.d:], t, w.s, t, false)
	nr := min(t, sw.n-bi*t)
	if valid := sw.n - bj*t; valid < t {
		for r := range nr {
			row := w.s[r*t : (r+1)*t]
			for k := valid; k < t; k++ {
				row[k] = negInf32
			}
		}
	}
	w.tl = tile{s: w.s, lds: t, nr: nr, nc: t, yr: c.rows.Label[bi*t:], yc: c.rows.Label[bj*t:]}
	return &w.tl
}

// poisonDiagonal sets the self-similarities of a diagonal tile to -Inf.
func poisonDiagonal(tl *tile) {
	for r := range tl.nr {
		tl.s[r*tl.lds+r] = negInf32
	}
}

// forward is sweep 1 for row block bi: online log-sum-exp of each row's
// negatives and positives over all column blocks.
func (sw *sweep) forward(w *cpuWorker, bi int) {
	st := &sw.c.rows
	base := bi * sw.t
	for bj := range sw.nb {
		tl := sw.similarities(w, bi, bj)
		if bi == bj {
			poisonDiagonal(tl)
		}
		sw.c.ks.tile.rowMax(tl, w.maxN, w.maxP)
		for r := range tl.nr {
			w.shN[r] = mergeMax(&st.NegMax[base+r], &st.NegSum[base+r], w.maxN[r])
			w.shP[r] = mergeMax(&st.PosMax[base+r], &st.PosSum[base+r], w.maxP[r])
		}
		sw.c.ks.tile.rowExpSum(tl, w.shN, w.shP, w.sumN, w.sumP)
		for r := range tl.nr {
			st.NegSum[base+r] += float64(w.sumN[r])
			st.PosSum[base+r] += float64(w.sumP[r])
		}
	}
}

// mergeMax raises a running maximum to include a tile's maximum, rescaling
// the running sum, and returns the shift for the tile's exponentials (0 while
// the set is still empty, so exp(-Inf - shift) stays 0).
func mergeMax(runMax *float32, runSum *float64, tileMax float32) float32 {
	if tileMax > *runMax {
		if *runSum != 0 {
			*runSum *= math.Exp(float64(*runMax) - float64(tileMax))
		}
		*runMax = tileMax
	}
	if *runMax == negInf32 {
		return 0
	}
	return *runMax
}

// positives is sweep 2 for row block bi (SINCERE and eps-SupInfoNCE): over
// the column blocks that hold the block's positives, sum softplus(u_r - s)
// and sigmoid(u_r - s) with u_r = M_r + eps.
func (sw *sweep) positives(w *cpuWorker, bi int) {
	st := &sw.c.rows
	t := sw.t
	base := bi * t
	last := min(sw.n, base+t) - 1
	lo := st.ClassStart[st.Label[base]]
	hi := st.ClassStart[st.Label[last]+1]
	for bj := lo / t; bj <= (hi-1)/t; bj++ {
		tl := sw.similarities(w, bi, bj)
		if bi == bj {
			poisonDiagonal(tl)
		}
		sw.c.ks.tile.rowSoftplus(tl, st.U[base:], w.sumN, w.sumP)
		for r := range tl.nr {
			st.SpSum[base+r] += float64(w.sumN[r])
			st.QSum[base+r] += float64(w.sumP[r])
		}
	}
}

// backward is sweep 3 for row block bi: for every column block, the tile
// H = G + G^T from both sides' statistics, then dZ_bi += H Z_bj / tau; the
// finished rows go to their original places in grad.
func (sw *sweep) backward(w *cpuWorker, bi int) {
	c, st, t, dp := sw.c, &sw.c.rows, sw.t, sw.dp
	base := bi * t
	for bj := range sw.nb {
		tl := sw.similarities(w, bi, bj)
		cb := bj * t
		if sw.supcon {
			c.ks.tile.gradSupCon(tl, st.Softmax[base:], st.Expo[base:], st.Coef[base:], st.Softmax[cb:], st.Expo[cb:], st.Coef[cb:])
		} else {
			c.ks.tile.gradSincere(tl, st.Coef[base:], st.Expo[base:], st.U[base:], st.Coef[cb:], st.Expo[cb:], st.U[cb:])
		}
		if bi == bj {
			for r := range tl.nr {
				tl.s[r*t+r] = 0
			}
		}
		for r := tl.nr; r < t; r++ {
			clear(tl.s[r*t : (r+1)*t])
		}
		c.ks.tile.gemm(t, dp, t, sw.alpha, tl.s, t, c.zs[cb*dp:], dp, w.dz, dp, bj > 0)
	}
	d := sw.d
	for r := range min(t, sw.n-base) {
		i := st.Order[base+r]
		copy(sw.grad[i*d:(i+1)*d], w.dz[r*dp:r*dp+d])
	}
}
