// Package kernels is the backend-neutral root of sincere's numeric core:
// the Device interface that the encoder, the losses and the optimiser are
// written against, the memory it owns (Memory, Arena and the Buffer, Ints
// and Scalars views), the operations' argument types, the supervised
// contrastive losses (SupCon, SINCERE, eps-SupInfoNCE) with their float64
// Reference, and the LossEngine interface of the host-to-host loss. The
// backends live beside it: internal/kernels/cpu (the CPU device and fused
// loss engine), internal/kernels/cuda (the CUDA engine, build tag gpu, and
// its CPU emulator, build tag gpuemu); internal/kernels/backend opens one
// by name, internal/kernels/fused holds the host side of the fused losses
// (the label sort they share, the CPU engine's row statistics), and
// internal/kernels/kerneltest is the conformance suite every backend passes.
//
// # The device contract
//
// Asynchrony and errors. A Device's calls may run asynchronously, in the
// order they are made. Only Sync, Download, ReadScalars and Timer.Read wait
// for the device ("they sync"), and they are where failures surface: the
// first failure since the last sync (bad sizes, a buffer of another device,
// out of memory, a kernel that failed, a NaN or Inf where an operation
// checks for one), as an *OpError naming the operation and its sizes.
// After a failure a device skips further work until a sync reports it.
// Alloc is the exception: it fails at once.
//
// Memory. Buffers are carved out of arenas (NewArena) that the caller
// creates and frees: a model's parameters, gradients and momentum live in
// three arenas of one layout, its running statistics in a fourth, a step's
// activations in a fifth sized once for the largest batch; a steady-state
// training step allocates nothing (MemStats counts every allocation,
// a backend's own scratch included). Whole-model operations (the SGD step,
// the squared gradient norm, zeroing the gradients) are one call over an
// arena. Parameter gradients are accumulated into; every other output is
// overwritten; outputs alias inputs only where a method says so.
//
// One sync per step. A training step queues its work and syncs once, at
// its end, reading two Scalars: the loss and the squared gradient norm,
// which is also the step's non-finite flag. SGD takes them as its guard and
// changes nothing when either is NaN or infinite, so a bad step leaves the
// weights as they were without a round trip to the host.
//
// Layout. Activations are channels-last, NHWC (every pixel of every image
// is a row of C channels); convolution filters are R x S x C x K; matrices
// are row-major.
//
// Determinism. No backend uses floating-point atomics; every reduction
// (filter gradients, batch-norm statistics, bias sums, sums of squares, the
// loss) sums in a fixed order, so a result depends only on its inputs and
// the device kind, never on scheduling or the number of threads. This is
// what makes --resume end bit-identical to an uninterrupted run.
//
// # The fused losses
//
// Every loss exists twice, side by side: Reference spells out the formulas
// of DESIGN section 2 with an N x N similarity matrix in float64, and the
// backends' fused engines never build that matrix. They keep O(N) per-row
// statistics and recompute tiles of the similarity matrix in three sweeps:
//
//  1. forward: online log-sum-exp over the negatives and the positives of
//     every row;
//  2. SINCERE and eps-SupInfoNCE only: a sweep over the tiles that hold
//     positive pairs, for the loss terms and the statistic W_i that the
//     gradient of the negatives needs;
//  3. backward: each tile's gradient G_ij + G_ji from the two rows'
//     statistics, multiplied into the rows of dL/dZ the worker owns.
//
// Rows are sorted by label first, so positive pairs sit in diagonal bands
// and sweep 2 only visits the tiles that hold them.
package kernels
