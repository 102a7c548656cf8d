//go:build gpu || gpuemu

package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/fused"
)

// deviceLoss is the contrastive loss's state on the device: for each label
// array uploaded, the rows sorted by label (sorted on the host when the
// labels are uploaded, while the GPU waits for the batch anyway, so that
// the loss itself is launches only); and the checks whose flags the next
// sync reads.
type deviceLoss struct {
	sorts  map[devPtr]*labelSort
	checks []check
	ints   []int // the labels as ints, for the sort
}

// labelSort is one label array sorted by label, on the host and on the
// device.
type labelSort struct {
	n, np            int
	anchors, classes int
	order, sorted    devPtr // n and np int32 values
	rows             fused.RowStats
	o32              []int32
}

// check is a flag in the device's check slots, read at the next sync: the
// first bad input of a gather (an index, ~0 when none) or a backward
// sweep's non-finite output (non-zero when one).
type check struct {
	op    string
	sizes string
	kind  int // checkInput or checkGrad
	z     devPtr
	d     int
}

const (
	checkInput = iota
	checkGrad
)

// The scratch buffers of a label array's sort are named by these prefixes
// and the array's address; the loss engine's profile leaves them out.
const (
	sortOrderPrefix  = "loss order "
	sortLabelsPrefix = "loss labels "
)

// sortScratchNames returns the names of the scratch buffers that hold the
// sort of the label array at p: its order and its sorted labels.
func sortScratchNames(p devPtr) (order, labels string) {
	return fmt.Sprintf("%s%x", sortOrderPrefix, p), fmt.Sprintf("%s%x", sortLabelsPrefix, p)
}

// sortLabels sorts a label array just uploaded to p, and uploads the order
// and the sorted dense labels (padded with -1 to a whole number of the
// loss's 64-row blocks).
func (d *Device) sortLabels(p devPtr, labels []int32) error {
	if d.loss.sorts == nil {
		d.loss.sorts = map[devPtr]*labelSort{}
	}
	n := len(labels)
	np := (n + cudaRows - 1) / cudaRows * cudaRows
	s := d.loss.sorts[p]
	if s == nil {
		s = &labelSort{}
		d.loss.sorts[p] = s
	}
	d.loss.ints = fused.Grow(nil, d.loss.ints, n)
	for i, y := range labels {
		d.loss.ints[i] = int(y)
	}
	s.n, s.np = n, np
	s.anchors, s.classes = s.rows.SortLabels(d.loss.ints, np)
	s.o32 = fused.Grow(nil, s.o32, n)
	for k, i := range s.rows.Order {
		s.o32[k] = int32(i)
	}
	orderName, labelsName := sortScratchNames(p)
	var err error
	if s.order, err = d.scratchBuf(orderName, 4*n); err != nil {
		return err
	}
	if s.sorted, err = d.scratchBuf(labelsName, 4*np); err != nil {
		return err
	}
	if err := d.drv.Upload(s.order, unsafe.Pointer(&s.o32[0]), 4*n); err != nil {
		return err
	}
	return d.drv.Upload(s.sorted, unsafe.Pointer(&s.rows.Label[0]), 4*np)
}

// forgetSort drops the sort of the label array at p and frees its device
// copies (its memory is being freed).
func (d *Device) forgetSort(p devPtr) {
	if d.loss.sorts[p] == nil {
		return
	}
	delete(d.loss.sorts, p)
	orderName, labelsName := sortScratchNames(p)
	for _, name := range []string{orderName, labelsName} {
		if b := d.scratch[name]; b != nil {
			_ = d.drv.Free(b.p, b.bytes)
			d.account(-b.bytes)
			delete(d.scratch, name)
		}
	}
}

// checkSlot returns the address of a new check's flag, set to its initial
// value by a kernel (in the stream, before the kernel that writes it).
func (d *Device) checkSlot(c check) (devPtr, error) {
	slots, err := d.scratchBuf("checks", 8*(len(d.loss.checks)+1))
	if err != nil {
		return 0, err
	}
	p := slots + devPtr(8*len(d.loss.checks))
	init := float32(0)
	if c.kind == checkInput {
		init = math.Float32frombits(^uint32(0)) // both words all ones: the flag is ~0
	}
	d.launchFlat("fill_f32", 2, kargs{}.ptr(p).i64(2).f32(init))
	d.loss.checks = append(d.loss.checks, c)
	return p, nil
}

// readChecks reads the flags of the checks queued since the last sync (the
// GPU is idle: the caller has waited) and returns the first failure.
func (d *Device) readChecks() error {
	cs := d.loss.checks
	d.loss.checks = cs[:0]
	if len(cs) == 0 {
		return nil
	}
	flags := make([]uint64, len(cs))
	slots := d.scratch["checks"]
	if err := d.drv.Download(unsafe.Pointer(&flags[0]), slots.p, 8*len(cs)); err != nil {
		return err
	}
	for i, c := range cs {
		switch {
		case c.kind == checkInput && flags[i] != ^uint64(0):
			var v float32
			if err := d.drv.Download(unsafe.Pointer(&v), c.z+devPtr(4*flags[i]), 4); err != nil {
				return err
			}
			return &kernels.OpError{Op: c.op, Sizes: c.sizes,
				Err: kernels.CheckFinite(float64(v), int(flags[i]), c.d)}
		case c.kind == checkGrad && flags[i] != 0:
			return &kernels.OpError{Op: c.op, Sizes: c.sizes, Err: fmt.Errorf("the gradient is not finite: %w", kernels.ErrNonFinite)}
		}
	}
	return nil
}

// Tile geometry of loss.cu.
const (
	cudaRows  = 64 // BM = BN: rows a block owns, rows of a column block
	cudaChunk = 32 // KC: dp is a multiple of it
)

// backwardWidth returns the dZ columns a backward block owns: the smallest
// of 32, 64, 128 that holds dp, else 256 (more blocks along y).
func backwardWidth(dp int) int {
	for _, w := range []int{32, 64, 128} {
		if dp <= w {
			return w
		}
	}
	return 256
}

// lossScratch is the loss's device buffers.
type lossScratch struct {
	zs, positives, lo, hi, negMax, negSum, posMax, posSum, posSim devPtr
	u2, spSum, sgSum, term, p0, p1, p2                            devPtr
}

// lossScratch returns the loss's device buffers for np rows of dp values.
func (d *Device) lossScratch(np, dp int) (*lossScratch, error) {
	var s lossScratch
	var errs []error
	take := func(dst *devPtr, name string, bytes int) {
		var err error
		*dst, err = d.scratchBuf("loss "+name, bytes)
		errs = append(errs, err)
	}
	nb := np / cudaRows
	take(&s.zs, "zs", 4*np*dp)
	take(&s.positives, "positives", 4*np)
	take(&s.lo, "block lo", 4*nb)
	take(&s.hi, "block hi", 4*nb)
	for _, f := range []struct {
		p     *devPtr
		name  string
		bytes int
	}{{&s.negMax, "negMax", 4}, {&s.negSum, "negSum", 8}, {&s.posMax, "posMax", 4}, {&s.posSum, "posSum", 8}, {&s.posSim, "posSim", 8},
		{&s.u2, "u2", 4}, {&s.spSum, "spSum", 8}, {&s.sgSum, "sgSum", 8}, {&s.term, "term", 8},
		{&s.p0, "p0", 4}, {&s.p1, "p1", 4}, {&s.p2, "p2", 4}} {
		take(f.p, f.name, f.bytes*np)
	}
	return &s, errors.Join(errs...)
}

// ContrastiveLoss runs loss.cu's launch sequence: the rows gathered in
// label order, the forward sweep, the per-row derivations, (SINCERE and
// eps-SupInfoNCE) the positives sweep, the loss added in a fixed order into
// loss[0], and, unless grad is nil, the backward sweep. Nothing is read
// back: a non-finite input or gradient is found by flags that the next
// sync reads.
func (d *Device) ContrastiveLoss(p kernels.Params, z kernels.Buffer, n, dim int, labels kernels.Ints, grad kernels.Buffer, loss kernels.Scalars) {
	err := kernels.CheckLens(kernels.Need("z", z, n*dim), kernels.Need("labels", labels, n),
		kernels.Optional("grad", grad, n*dim), kernels.Need("loss", loss, 1))
	if err == nil {
		err = p.Validate()
	}
	if err == nil && n > math.MaxInt32/2 {
		err = fmt.Errorf("a batch of %d rows is too large for the CUDA kernels", n)
	}
	var s *labelSort
	if err == nil {
		if s = d.loss.sorts[i32p(labels)]; s == nil || s.n != n {
			err = fmt.Errorf("labels that were not uploaded with UploadInts")
		}
	}
	sz := kernels.Sizes(func() string { return fmt.Sprintf("%s, %d x %d", p.Loss, n, dim) })
	if !d.begin("contrastive loss", sz, err, z, labels, grad, loss) {
		return
	}
	if s.anchors == 0 {
		d.faults.Add("contrastive loss", sz(), kernels.ErrNoAnchors)
		return
	}
	pz, pg, pl := f32p(z), f32p(grad), f64p(loss)
	if p.Loss != kernels.SupCon && s.classes == 1 {
		// No negatives anywhere: every term is -eps and the gradient
		// vanishes (as the CPU engine settles it).
		v := -p.Margin()
		d.fail("contrastive loss", d.drv.Upload(pl, unsafe.Pointer(&v), 8))
		if !grad.IsNil() {
			d.Fill(grad, 0)
		}
		return
	}
	np, dp := s.np, (dim+cudaChunk-1)/cudaChunk*cudaChunk
	nb := np / cudaRows
	sc, err := d.lossScratch(np, dp)
	if err != nil {
		d.fail("contrastive loss", err)
		return
	}
	bad, err := d.checkSlot(check{op: "contrastive loss", sizes: sz(), kind: checkInput, z: pz, d: dim})
	if err != nil {
		d.fail("contrastive loss", err)
		return
	}
	prec := d.lossPrec
	scale, eps := p.Scale(), p.Margin()
	scale2 := float32(math.Log2E / p.Temperature)
	rowGrid := [3]int{(np + threads - 1) / threads, 1, 1}
	d.launch("gather_rows", [3]int{min((np*dp+threads-1)/threads, 4096), 1, 1},
		kargs{}.ptr(pz).ptr(s.order).i32(n).i32(dim).i32(np).i32(dp).ptr(sc.zs).ptr(bad))
	d.launch("contrastive_setup", rowGrid, kargs{}.ptr(s.sorted).i32(n).i32(np).ptr(sc.positives).ptr(sc.lo).ptr(sc.hi))
	d.launch("forward_"+prec, [3]int{nb, 1, 1}, kargs{}.ptr(sc.zs).ptr(s.sorted).i32(n).i32(dp).f32(scale2).
		ptr(sc.negMax).ptr(sc.negSum).ptr(sc.posMax).ptr(sc.posSum).ptr(sc.posSim))
	supcon := p.Loss == kernels.SupCon
	if supcon {
		d.launch("supcon_rows", rowGrid, kargs{}.ptr(sc.negMax).ptr(sc.negSum).ptr(sc.posMax).ptr(sc.posSum).ptr(sc.posSim).
			ptr(sc.positives).i32(n).i32(np).i32(s.anchors).f64(scale).ptr(sc.term).ptr(sc.p0).ptr(sc.p1).ptr(sc.p2))
	} else {
		d.launch("sincere_u2", rowGrid, kargs{}.ptr(sc.negMax).ptr(sc.negSum).i32(n).i32(np).f64(eps).ptr(sc.u2))
		d.launch("positives_"+prec, [3]int{nb, 1, 1}, kargs{}.ptr(sc.zs).ptr(s.sorted).i32(n).i32(dp).f32(scale2).
			ptr(sc.u2).ptr(sc.lo).ptr(sc.hi).ptr(sc.spSum).ptr(sc.sgSum))
		d.launch("sincere_rows", rowGrid, kargs{}.ptr(sc.negMax).ptr(sc.negSum).ptr(sc.spSum).ptr(sc.sgSum).ptr(sc.u2).
			ptr(sc.positives).i32(n).i32(np).i32(s.anchors).f64(scale).f64(eps).ptr(sc.term).ptr(sc.p0).ptr(sc.p1).ptr(sc.p2))
	}
	d.launch("contrastive_loss", [3]int{1, 1, 1}, kargs{}.ptr(sc.term).i32(n).f64(scale/float64(s.anchors)).ptr(pl))
	if grad.IsNil() {
		return
	}
	badGrad, err := d.checkSlot(check{op: "contrastive loss backward", sizes: sz(), kind: checkGrad})
	if err != nil {
		d.fail("contrastive loss", err)
		return
	}
	w := backwardWidth(dp)
	d.launch(fmt.Sprintf("backward_%s_d%d", prec, w), [3]int{nb, (dp + w - 1) / w, 1},
		kargs{}.ptr(sc.zs).ptr(s.sorted).ptr(s.order).i32(n).i32(dim).i32(dp).f32(scale2).f32(float32(1/p.Temperature)).
			i32(flag(supcon)).ptr(sc.p0).ptr(sc.p1).ptr(sc.p2).ptr(pg).ptr(badGrad))
}
