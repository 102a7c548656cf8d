// Package kernels holds the numeric core of sincere: the supervised
// contrastive losses (SupCon, SINCERE, eps-SupInfoNCE) with their gradients,
// and the primitives they are built from.
//
// Every loss exists twice, side by side: a plain float64 reference
// (Reference) that spells out the formulas of DESIGN section 2 with an N x N
// similarity matrix, and a fused engine (CPU) that never builds that matrix.
// The fused engine keeps O(N) per-row statistics and recomputes tiles of the
// similarity matrix in three sweeps:
//
//  1. forward: online log-sum-exp over the negatives and the positives of
//     every row;
//  2. SINCERE and eps-SupInfoNCE only: a sweep over the tiles that hold
//     positive pairs, for the loss terms and the statistic W_i that the
//     gradient of the negatives needs;
//  3. backward: each tile's gradient G_ij + G_ji from the two rows'
//     statistics, multiplied into the rows of dL/dZ the worker owns.
//
// Rows are sorted by label first, so positive pairs sit in diagonal bands and
// sweep 2 only visits the tiles that hold them. Each worker owns whole row
// blocks, so the result does not depend on the number of workers or on
// scheduling: the same inputs give the same bits.
//
// The CUDA engine (build tag gpu; cuda.go, cuda_driver.go, cuda/loss.cu) runs
// the same three sweeps as GPU kernels through gorgonia.org/cu, with the
// host deriving the per-row parameters between them exactly as the CPU
// engine does. Built with the tag gpuemu instead, the engine runs its
// kernels on the CPU emulator of package cudaemu, for tests without a GPU.
package kernels
