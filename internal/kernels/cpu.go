package kernels

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// CPUOptions configures a CPU engine. The zero value is the default: every
// core, tiles sized from the batch, the fastest kernels the processor runs.
type CPUOptions struct {
	// Workers is the number of goroutines; 0 means GOMAXPROCS.
	Workers int
	// Tile is the side of the square similarity tiles, a multiple of 48;
	// 0 chooses it from the batch size.
	Tile int
	// Portable forces the pure-Go kernels even where assembly ones exist.
	Portable bool
}

// CPU is the fused loss engine for the CPU. It keeps its scratch memory
// between calls, so repeated calls of one size allocate nothing; a CPU must
// not be used by two goroutines at once.
type CPU struct {
	workers int
	tile    int
	ops     tileOps

	// Buffers kept between calls, grown as needed.
	zs, zt  []float32 // label-sorted Z, padded (np x dp), and its transposed blocks
	rows    rowStats
	scratch []*cpuWorker
}

// rowStats holds the per-row statistics of one call, indexed by sorted row.
type rowStats struct {
	label               []int32   // dense class, -1 for padding
	negMax, posMax      []float32 // running maxima of the online log-sum-exp (base 2 in the CUDA engine)
	negSum, posSum      []float64 // running sums, relative to the maxima
	spSum, qSum         []float64 // sweep 2: sum softplus, sum sigmoid
	sumPos              []float64 // SupCon: sum of s_ip over positives (of s_ip log2 e in the CUDA engine)
	lseNeg, lsePos      []float64 // log-sum-exp over negatives (M_i) and positives
	u                   []float32 // SINCERE: M_i + eps
	softmax, expo, coef []float32 // backward: a_i, the exponent shift, c_i (gradientParams)
	positives           []int32   // |P(i)|
	order               []int     // original row of each sorted row
	classStart          []int     // first sorted row of each class, and n at the end
}

// cpuWorker is one goroutine's scratch: a similarity tile, the gradient rows
// of the block it owns, and per-row temporaries.
type cpuWorker struct {
	tl                               tile // the tile being swept, over s
	s, dz                            []float32
	maxN, maxP, shN, shP, sumN, sumP []float32
}

// NewCPU returns a CPU engine.
func NewCPU(opt CPUOptions) (*CPU, error) {
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
	ops := fastOps()
	if opt.Portable || ops == nil {
		ops = &portableOps
	}
	return &CPU{workers: w, tile: opt.Tile, ops: *ops}, nil
}

// Device returns "cpu".
func (c *CPU) Device() string { return "cpu" }

// Kernels names the tile kernels in use: "avx2-fma" or "portable".
func (c *CPU) Kernels() string { return c.ops.name }

// Workers returns the number of goroutines a call uses.
func (c *CPU) Workers() int { return c.workers }

// tileFor returns the tile side for a batch of n rows.
func (c *CPU) tileFor(n int) int {
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
func (c *CPU) Compute(p Params, z []float32, n, d int, labels []int, grad []float32) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	if err := CheckInputs(z, n, d, labels); err != nil {
		return Result{}, err
	}
	if grad != nil && len(grad) != n*d {
		return Result{}, fmt.Errorf("gradient buffer holds %d values, want %d", len(grad), n*d)
	}
	st := &c.rows
	t := c.tileFor(n)
	nb := (n + t - 1) / t
	np := nb * t
	dp := (d + 15) &^ 15
	anchors, res, done, err := st.begin(p, labels, np, grad)
	if done {
		return res, err
	}
	eps := p.epsilon()

	c.layout(z, n, d, t, np, dp)
	st.resize(np)
	c.workerScratch(t, dp)
	sw := &sweep{c: c, n: n, d: d, t: t, nb: nb, dp: dp, alpha: float32(1 / p.Temperature), supcon: p.Loss == SupCon}

	// Sweep 1: online log-sum-exp over negatives and positives of every row.
	sw.run(sw.forward)
	for r := range n {
		st.lseNeg[r] = lseOf(st.negMax[r], st.negSum[r])
		st.lsePos[r] = lseOf(st.posMax[r], st.posSum[r])
	}
	var total float64 // sum over anchors of their mean loss term, in row order
	if sw.supcon {
		sumPos := st.positiveSimilarities(z, d, p.Temperature)
		for r := range n {
			if st.positives[r] > 0 {
				total += logAddExp(st.lseNeg[r], st.lsePos[r]) - sumPos[r]/float64(st.positives[r])
			}
		}
	} else {
		// Sweep 2: l_ip = softplus(u_i - s_ip) - eps with u_i = M_i + eps.
		for r := range n {
			st.u[r] = float32(st.lseNeg[r] + eps)
		}
		sw.run(sw.positives)
		for r := range n {
			if st.positives[r] > 0 {
				total += st.spSum[r]/float64(st.positives[r]) - eps
			}
		}
	}
	scale := p.scale()
	res = Result{Loss: total / float64(anchors) * scale, Anchors: anchors}
	if grad != nil {
		st.gradientParams(sw.supcon, n, anchors, scale)
		sw.grad = grad
		sw.run(sw.backward)
	}
	return res, nil
}

// begin sorts the rows by label and settles the calls that need no sweeps:
// no anchors (an error) and, for SINCERE and eps-SupInfoNCE, a single class
// (no negatives anywhere: D_ip = s_ip - eps, so every term is -eps and the
// gradient vanishes). done says whether res and err are the answer.
func (st *rowStats) begin(p Params, labels []int, np int, grad []float32) (anchors int, res Result, done bool, err error) {
	anchors, classes := st.sortLabels(labels, np)
	switch {
	case anchors == 0:
		return 0, Result{}, true, ErrNoAnchors
	case p.Loss != SupCon && classes == 1:
		if grad != nil {
			clear(grad)
		}
		return anchors, Result{Loss: -p.epsilon(), Anchors: anchors}, true, nil
	}
	return anchors, Result{}, false, nil
}

// gradientParams fills the per-row parameters of the backward tile kernels
// (see tileOps.gradSupCon and gradSincere). Rows that are not anchors, and
// padding rows, get a zero coefficient and a -Inf exponent, so that their
// G_ij vanish.
func (st *rowStats) gradientParams(supcon bool, n, anchors int, scale float64) {
	for r := range st.coef {
		if r >= n {
			st.u[r] = 0
		}
		if r >= n || st.positives[r] == 0 {
			st.softmax[r], st.expo[r], st.coef[r] = 0, negInf32, 0
			continue
		}
		ci := scale / float64(anchors) / float64(st.positives[r]) // c_i, with the scale
		st.coef[r] = float32(ci)
		if supcon {
			// G_ij = a_i exp(s_ij - L_i) - c_i [j in P(i)], a_i = c_i |P(i)|
			st.softmax[r] = float32(scale / float64(anchors))
			st.expo[r] = float32(-logAddExp(st.lseNeg[r], st.lsePos[r]))
		} else {
			// G_in = c_i exp(s_in + W_i), W_i = log(sum_p exp(M_i - D_ip)) - M_i;
			// G_ip = -c_i sigmoid(u_i - s_ip), u_i = M_i + eps (set by sweep 2)
			st.expo[r] = float32(math.Log(st.qSum[r]) - st.lseNeg[r])
		}
	}
}

// lseOf turns an online log-sum-exp state into its value.
func lseOf(m float32, sum float64) float64 {
	if sum == 0 || math.IsInf(float64(m), -1) {
		return math.Inf(-1)
	}
	return float64(m) + math.Log(sum)
}

// sortLabels orders the rows by label, fills order, label (padded with -1 up
// to np rows), positives and classStart, and returns |A| and the number of
// classes.
func (st *rowStats) sortLabels(labels []int, np int) (anchors, classes int) {
	n := len(labels)
	st.order = grow(st.order, n)
	st.orderByLabel(labels)
	st.label = grow(st.label, np)
	for r := n; r < np; r++ {
		st.label[r] = -1
	}
	st.positives = grow(st.positives, n)
	st.classStart = st.classStart[:0]
	for k, i := range st.order {
		if k == 0 || labels[i] != labels[st.order[k-1]] {
			st.classStart = append(st.classStart, k)
		}
		st.label[k] = int32(len(st.classStart) - 1)
	}
	st.classStart = append(st.classStart, n)
	classes = len(st.classStart) - 1
	for cl := range classes {
		size := st.classStart[cl+1] - st.classStart[cl]
		for k := st.classStart[cl]; k < st.classStart[cl+1]; k++ {
			st.positives[k] = int32(size - 1)
		}
		if size > 1 {
			anchors += size
		}
	}
	return anchors, classes
}

// orderByLabel sets order to the rows sorted by label, ties by row: a
// counting sort when the labels span a small range (class indices), else a
// comparison sort. Both give the same order.
func (st *rowStats) orderByLabel(labels []int) {
	n := len(labels)
	if n == 0 {
		return
	}
	lo, hi := slices.Min(labels), slices.Max(labels)
	if span := uint64(hi) - uint64(lo); hi >= lo && span < uint64(4*n+1024) {
		count := make([]int, span+2)
		for _, y := range labels {
			count[y-lo+1]++
		}
		for k := 1; k < len(count); k++ {
			count[k] += count[k-1]
		}
		for i, y := range labels {
			st.order[count[y-lo]] = i
			count[y-lo]++
		}
		return
	}
	for i := range n {
		st.order[i] = i
	}
	slices.SortFunc(st.order, func(a, b int) int {
		return cmp.Or(cmp.Compare(labels[a], labels[b]), cmp.Compare(a, b))
	})
}

// resize sizes the per-row arrays for np rows and resets the running
// statistics.
func (st *rowStats) resize(np int) {
	for _, a := range []*[]float32{&st.negMax, &st.posMax, &st.u, &st.softmax, &st.expo, &st.coef} {
		*a = grow(*a, np)
	}
	for _, a := range []*[]float64{&st.negSum, &st.posSum, &st.spSum, &st.qSum, &st.lseNeg, &st.lsePos, &st.sumPos} {
		*a = grow(*a, np)
		clear(*a)
	}
	for r := range np {
		st.negMax[r], st.posMax[r] = negInf32, negInf32
	}
}

// positiveSimilarities returns, for every sorted row r, sum over its
// positives p of s_rp = z_r . (sum of its class's rows - z_r) / tau, in float64.
func (st *rowStats) positiveSimilarities(z []float32, d int, tau float64) []float64 {
	n := len(st.order)
	out := st.sumPos[:n]
	sum := make([]float64, d)
	for cl := range len(st.classStart) - 1 {
		lo, hi := st.classStart[cl], st.classStart[cl+1]
		if hi-lo < 2 {
			out[lo] = 0
			continue
		}
		clear(sum)
		for k := lo; k < hi; k++ {
			row := z[st.order[k]*d : st.order[k]*d+d]
			for j, v := range row {
				sum[j] += float64(v)
			}
		}
		for k := lo; k < hi; k++ {
			row := z[st.order[k]*d : st.order[k]*d+d]
			var dot float64
			for j, v := range row {
				dot += float64(v) * (sum[j] - float64(v))
			}
			out[k] = dot / tau
		}
	}
	return out
}

// layout writes the label-sorted, zero-padded copy of z (np x dp) and, per
// block of t rows, its transpose (d x t) for the similarity products.
func (c *CPU) layout(z []float32, n, d, t, np, dp int) {
	c.zs = grow(c.zs, np*dp)
	clear(c.zs)
	for k := range n {
		copy(c.zs[k*dp:k*dp+d], z[c.rows.order[k]*d:c.rows.order[k]*d+d])
	}
	c.zt = grow(c.zt, np*d)
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
func (c *CPU) workerScratch(t, dp int) []*cpuWorker {
	for len(c.scratch) < c.workers {
		c.scratch = append(c.scratch, &cpuWorker{})
	}
	for _, w := range c.scratch {
		w.s = grow(w.s, t*t)
		w.dz = grow(w.dz, t*dp)
		for _, a := range []*[]float32{&w.maxN, &w.maxP, &w.shN, &w.shP, &w.sumN, &w.sumP} {
			*a = grow(*a, t)
		}
	}
	return c.scratch[:c.workers]
}

// grow returns a slice of length n, reusing s's memory when it is large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// sweep is one call's geometry and the work of its three passes over the
// row blocks.
type sweep struct {
	c           *CPU
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
	c.ops.gemm(t, t, sw.d, sw.alpha, c.zs[bi*t*sw.dp:], sw.dp, c.zt[bj*t*sw.d:], t, w.s, t, false)
	nr := min(t, sw.n-bi*t)
	if valid := sw.n - bj*t; valid < t {
		for r := range nr {
			row := w.s[r*t : (r+1)*t]
			for k := valid; k < t; k++ {
				row[k] = negInf32
			}
		}
	}
	w.tl = tile{s: w.s, lds: t, nr: nr, nc: t, yr: c.rows.label[bi*t:], yc: c.rows.label[bj*t:]}
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
		sw.c.ops.rowMax(tl, w.maxN, w.maxP)
		for r := range tl.nr {
			w.shN[r] = mergeMax(&st.negMax[base+r], &st.negSum[base+r], w.maxN[r])
			w.shP[r] = mergeMax(&st.posMax[base+r], &st.posSum[base+r], w.maxP[r])
		}
		sw.c.ops.rowExpSum(tl, w.shN, w.shP, w.sumN, w.sumP)
		for r := range tl.nr {
			st.negSum[base+r] += float64(w.sumN[r])
			st.posSum[base+r] += float64(w.sumP[r])
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
	lo := st.classStart[st.label[base]]
	hi := st.classStart[st.label[last]+1]
	for bj := lo / t; bj <= (hi-1)/t; bj++ {
		tl := sw.similarities(w, bi, bj)
		if bi == bj {
			poisonDiagonal(tl)
		}
		sw.c.ops.rowSoftplus(tl, st.u[base:], w.sumN, w.sumP)
		for r := range tl.nr {
			st.spSum[base+r] += float64(w.sumN[r])
			st.qSum[base+r] += float64(w.sumP[r])
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
			c.ops.gradSupCon(tl, st.softmax[base:], st.expo[base:], st.coef[base:], st.softmax[cb:], st.expo[cb:], st.coef[cb:])
		} else {
			c.ops.gradSincere(tl, st.coef[base:], st.expo[base:], st.u[base:], st.coef[cb:], st.expo[cb:], st.u[cb:])
		}
		if bi == bj {
			for r := range tl.nr {
				tl.s[r*t+r] = 0
			}
		}
		for r := tl.nr; r < t; r++ {
			clear(tl.s[r*t : (r+1)*t])
		}
		c.ops.gemm(t, dp, t, sw.alpha, tl.s, t, c.zs[cb*dp:], dp, w.dz, dp, bj > 0)
	}
	d := sw.d
	for r := range min(t, sw.n-base) {
		i := st.order[base+r]
		copy(sw.grad[i*d:(i+1)*d], w.dz[r*dp:r*dp+d])
	}
}
