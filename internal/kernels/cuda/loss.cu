// Fused SupCon / SINCERE / eps-SupInfoNCE kernels (DESIGN section 2) and
// the L2 normalisation around them.
//
// The N x N similarity matrix never exists. The host sorts the rows by label
// and gathers them into zs (np x dp, zero padded: np a multiple of 64, dp of
// 32). Each block of 256 threads owns BM = 64 rows and sweeps the column
// blocks of BN = 64 rows, recomputing the similarity tile
//     t = (z_r . z_c) * log2(e) / tau
// (base-2 units, so that every exponential is one ex2) in shared memory,
// staged through 32-column chunks. Three kernels, as the CPU engine's sweeps:
//
//   forward    online log-sum-exp of each row over its negatives and over its
//              positives, and the sum of its positive similarities;
//   positives  (SINCERE, eps-SupInfoNCE) over the column blocks that hold a
//              row block's classes: sum softplus(u_i - s_ip), sum sigmoid(..);
//   backward   H = G + G^T from the row's and the column's parameters (the
//              host derives them from the statistics), then dZ_rows += H Z_c;
//              a block owns its rows of dZ: no atomics.
//
// In the elementwise work thread t holds row t / 4 and the 16 columns
// t % 4 + 4 m, so every row's statistics stay in 4 threads' registers for the
// whole sweep and meet in two shuffles at the end.
//
// The per-row derivations between the sweeps (log-sum-exps, the loss terms,
// the backward parameters) and the loss's reduction run on the device too
// (contrastive_setup, supcon_rows, sincere_u2, sincere_rows,
// contrastive_loss below), so that a loss and its gradient are a sequence
// of launches on one stream with no host round trip: the host sorts the
// rows by label (the labels come from the batch, on the host), uploads the
// order and the sorted labels, and launches:
//
//   n rows of d, np = ceil(n / 64) 64, dp = ceil(d / 32) 32, nb = np / 64,
//   P = fp32 | tf32 | tf32x3, anchors = rows whose class has 2 or more
//   (the host's count; no anchors is an error and, for SINCERE and
//   eps-SupInfoNCE, a single class gives loss -eps and a zero gradient,
//   both settled on the host without launches), scale = the loss's factor
//   (tau / b for SupCon with a base temperature b, else 1),
//   scale2 = log2(e) / tau. Every block has 256 threads.
//
//   1. gather_rows<<<min(ceil(np dp / 256), 4096)>>>(z, order, n, d, np, dp,
//        zs, badInput)                 zs = sorted, padded rows; *badInput =
//                                      first non-finite index (host sets ~0)
//   2. contrastive_setup<<<ceil(np / 256)>>>(labels, n, np, positives,
//        blockLo, blockHi)             |P(i)| per row; per row block the
//                                      column blocks that hold its classes
//   3. forward_P<<<nb>>>(zs, labels, n, dp, scale2, negMax, negSum, posMax,
//        posSum, posSim)
//   SupCon:
//   4. supcon_rows<<<ceil(np / 256)>>>(negMax, negSum, posMax, posSum,
//        posSim, positives, n, np, anchors, scale, term, p0, p1, p2)
//   SINCERE, eps-SupInfoNCE:
//   4a. sincere_u2<<<ceil(np / 256)>>>(negMax, negSum, n, np, eps, u2)
//   4b. positives_P<<<nb>>>(zs, labels, n, dp, scale2, u2, blockLo,
//         blockHi, spSum, sgSum)
//   4c. sincere_rows<<<ceil(np / 256)>>>(negMax, negSum, spSum, sgSum, u2,
//         positives, n, np, anchors, scale, eps, term, p0, p1, p2)
//   Both:
//   5. contrastive_loss<<<1>>>(term, n, scale / anchors, loss)
//        *loss (float64) = scale / anchors sum_i term_i, in a fixed order
//   6. backward_P_dW<<<(nb, ceil(dp / W))>>>(zs, labels, order, n, d, dp,
//        scale2, 1 / tau, supcon, p0, p1, p2, grad, badGrad)
//        W = the smallest of 32, 64, 128 that holds dp, else 256; *badGrad
//        set when a gradient value is not finite (host sets 0)
// Device buffers: zs np dp floats; labels, positives np ints; blockLo,
// blockHi nb ints; negMax, posMax, u2, p0, p1, p2 np floats; negSum,
// posSum, posSim, spSum, sgSum, term np doubles; loss one double. Steps
// 4-6 of the rows past n (padding) give them zero terms and parameters that
// cancel their gradient. A NaN or infinity in the statistics makes the loss
// NaN: the training step's non-finite guard (sgd_f32) then skips the step.
//
// Tile products run in one of three precisions: FP32 (plain FMAs, any GPU),
// TF32 (tensor cores, sm_80+) and TF32X3 (each operand split into a TF32 high
// and low part, three products: about FP32's accuracy at three times the
// tensor work). `make ptx` compiles this file for compute_80 (all three) and
// for compute_60 (FP32 only). With SINCERE_EMU defined, emu.h makes the same
// source a C++ program for the CPU emulator the tests run without a GPU.

#include "common.h"

namespace sincere {

constexpr int BM = 64;          // rows a block owns
constexpr int BN = 64;          // rows of a column block
constexpr int KC = 32;          // columns of a staged chunk
constexpr int TPR = NT / BM;    // threads sharing a row in elementwise work
constexpr int CPT = BN / TPR;   // tile columns each of them holds
constexpr int OPT = KC / TPR;   // dZ columns per chunk each of them holds (FP32)
constexpr int ZLD = KC + 4;     // row stride of a staged chunk, in floats
constexpr int SLD = BN + TPR;   // row stride of the tile: conflict-free rows
constexpr float LN2 = 0.693147180559945309f;

static_assert(BM == BN, "the dZ write-out reuses a column chunk's space");
static_assert(NT == 4 * BM && TPR == 4, "thread layout");

enum Precision { FP32 = 0, TF32 = 1, TF32X3 = 2 };

// Smem is a block's shared memory: 36 KiB, under the 48 KiB every GPU
// gives a block without opting in.
struct Smem {
  float zr[BM * ZLD];  // FP32: chunk of the block's rows; TF32: 2nd buffer of zc
  float zc[BN * ZLD];  // chunk of the column block's rows
  float s[BM * SLD];   // similarity tile, then gradient tile, then dZ chunk
  int yc[BN];          // labels of the column block
  float p0[BN], p1[BN], p2[BN];  // its backward parameters
};

// stage copies rows [row0, row0 + 64) x columns [k0, k0 + KC) of z (row
// stride dp) into dst (row stride ZLD), 16 bytes per thread and load.
__device__ __forceinline__ void stage(float* dst, const float* __restrict__ z, int dp, int row0, int k0) {
  for (int idx = threadIdx.x; idx < 64 * KC / 4; idx += NT) {
    const int r = idx / (KC / 4), c = (idx % (KC / 4)) * 4;
    const float4 v = *reinterpret_cast<const float4*>(z + (size_t)(row0 + r) * dp + k0 + c);
    *reinterpret_cast<float4*>(dst + r * ZLD + c) = v;
  }
}

// stageColumns copies the column block's labels and, when p0 is not null,
// its backward parameters.
__device__ __forceinline__ void stageColumns(Smem& sm, int cbase, const int* __restrict__ lab,
                                             const float* __restrict__ p0, const float* __restrict__ p1,
                                             const float* __restrict__ p2) {
  const int t = threadIdx.x;
  if (t < BN) {
    sm.yc[t] = lab[cbase + t];
    if (p0 != nullptr) {
      sm.p0[t] = p0[cbase + t];
      sm.p1[t] = p1[cbase + t];
      sm.p2[t] = p2[cbase + t];
    }
  }
}

#if SINCERE_TC
// stageAsync starts copying rows [row0, row0 + 64) x columns [k0, k0 + KC)
// of z into dst (row stride ZLD) and commits the copies as one group.
__device__ __forceinline__ void stageAsync(float* dst, const float* __restrict__ z, int dp, int row0, int k0) {
  for (int idx = threadIdx.x; idx < 64 * KC / 4; idx += NT) {
    const int r = idx / (KC / 4), c = (idx % (KC / 4)) * 4;
    cpAsync16(dst + r * ZLD + c, z + (size_t)(row0 + r) * dp + k0 + c);
  }
  cpAsyncCommit();
}
#endif

// Pipe carries the staging pipeline of the column chunks from one tile to
// the next: g counts the chunks staged so far (chunk g goes to buffer g % 2)
// and ahead says that the next tile's first chunk is already on its way.
struct Pipe {
  int g = 0;
  bool ahead = false;
};

#if SINCERE_TC
using namespace nvcuda;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> FragBT;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> FragB;
typedef wmma::fragment<wmma::accumulator, 16, 16, 8, float> FragC;

// prepare rounds a loaded operand to TF32 or, for TF32X3, splits it into
// its TF32 part (f) and the TF32 rounding of the remainder (lo).
template <int P, class F>
__device__ __forceinline__ void prepare(F& f, F& lo) {
#pragma unroll
  for (int i = 0; i < f.num_elements; i++) {
    const float v = f.x[i];
    const float hi = wmma::__float_to_tf32(v);
    f.x[i] = hi;
    if (P == TF32X3) lo.x[i] = wmma::__float_to_tf32(v - hi);
  }
}

// product adds a b to acc; for TF32X3 the two small cross terms first.
template <int P, class FA, class FB>
__device__ __forceinline__ void product(FragC& acc, const FA& a, const FA& alo, const FB& b, const FB& blo) {
  if (P == TF32X3) {
    wmma::mma_sync(acc, alo, b, acc);
    wmma::mma_sync(acc, a, blo, acc);
  }
  wmma::mma_sync(acc, a, b, acc);
}
#endif

// scores sets sm.s to the tile t = scale * Z[rbase..] Z[cbase..]^T (64 x 64),
// staging the column block's labels (and parameters) on the way. It starts
// with a barrier, so the caller may still be reading sm from the last tile,
// and ends with one. On tensor cores it also starts loading the first chunk
// of the next tile, at row nextCbase (none when negative).
template <int P>
__device__ __forceinline__ void scores(Smem& sm, Pipe& pipe, const float* __restrict__ z, int dp, int rbase, int cbase,
                                       int nextCbase, float scale, const int* __restrict__ lab,
                                       const float* __restrict__ p0, const float* __restrict__ p1,
                                       const float* __restrict__ p2) {
  if constexpr (P == FP32) {
    const int r = threadIdx.x / TPR, q = threadIdx.x % TPR;
    float acc[CPT];
#pragma unroll
    for (int m = 0; m < CPT; m++) acc[m] = 0.f;
    for (int k0 = 0; k0 < dp; k0 += KC) {
      __syncthreads();
      stage(sm.zr, z, dp, rbase, k0);
      stage(sm.zc, z, dp, cbase, k0);
      if (k0 == 0) stageColumns(sm, cbase, lab, p0, p1, p2);
      __syncthreads();
#pragma unroll 4
      for (int k = 0; k < KC; k++) {
        const float a = sm.zr[r * ZLD + k];
#pragma unroll
        for (int m = 0; m < CPT; m++) acc[m] = fmaf(a, sm.zc[(q + TPR * m) * ZLD + k], acc[m]);
      }
    }
#pragma unroll
    for (int m = 0; m < CPT; m++) sm.s[r * SLD + q + TPR * m] = acc[m] * scale;
    __syncthreads();
  } else {
#if SINCERE_TC
    // Warp w computes the 16 x 16 tiles (w / 2, 2 (w % 2) + j), j = 0, 1.
    // The column block's chunks are staged in shared memory; the block's
    // own rows are read straight from global memory: the same 64 x dp
    // values for every column block, so after the first they come from L1
    // and the rows cost no L2 traffic and no staging.
    const int warp = threadIdx.x / 32, wr = warp >> 1, wc = (warp & 1) * 2;
    const float* zr = z + (size_t)(rbase + wr * 16) * dp;
    // Chunk g is staged in sm.zc when g is even, in sm.zr when odd.
    auto buf = [&sm](int g) { return (g & 1) ? sm.zr : sm.zc; };
    FragC acc[2];
    wmma::fill_fragment(acc[0], 0.f);
    wmma::fill_fragment(acc[1], 0.f);
    __syncthreads();  // the last tile's users of sm are done
    if (!pipe.ahead) stageAsync(buf(pipe.g), z, dp, cbase, 0);
    stageColumns(sm, cbase, lab, p0, p1, p2);
    const int nk = dp / KC;
    for (int ci = 0; ci < nk; ci++) {
      const int g = pipe.g + ci;
      cpAsyncWaitAll();
      // Chunk g is in for everyone, and everyone is done with chunk g - 1,
      // whose buffer now takes chunk g + 1 while chunk g is multiplied.
      __syncthreads();
      if (ci + 1 < nk) {
        stageAsync(buf(g + 1), z, dp, cbase, (ci + 1) * KC);
      } else if (nextCbase >= 0) {
        stageAsync(buf(g + 1), z, dp, nextCbase, 0);
      }
      const float* zc = buf(g);
      const int k0 = ci * KC;
#pragma unroll
      for (int kk = 0; kk < KC; kk += 8) {
        FragA a, alo;
        wmma::load_matrix_sync(a, zr + k0 + kk, dp);
        prepare<P>(a, alo);
#pragma unroll
        for (int j = 0; j < 2; j++) {
          FragBT b, blo;
          wmma::load_matrix_sync(b, zc + (wc + j) * 16 * ZLD + kk, ZLD);
          prepare<P>(b, blo);
          product<P>(acc[j], a, alo, b, blo);
        }
      }
    }
    pipe.g += nk;
    pipe.ahead = nextCbase >= 0;
#pragma unroll
    for (int j = 0; j < 2; j++) {
#pragma unroll
      for (int i = 0; i < acc[j].num_elements; i++) acc[j].x[i] *= scale;
      wmma::store_matrix_sync(sm.s + wr * 16 * SLD + (wc + j) * 16, acc[j], SLD, wmma::mem_row_major);
    }
    __syncthreads();
#endif
  }
}

// DZ accumulates a block's rows of dZ, columns [col0, col0 + 32 NCH), over
// the column blocks: dZ += H Z_c with H the gradient tile in sm.s.
template <int P, int NCH>
struct DZ;

template <int NCH>
struct DZ<FP32, NCH> {
  float v[NCH][OPT];  // row t / 4, columns 32 c + t % 4 + 4 m

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int c = 0; c < NCH; c++)
#pragma unroll
      for (int m = 0; m < OPT; m++) v[c][m] = 0.f;
  }

  // accumulate starts with a barrier: the gradient tile is complete and
  // nobody still reads sm.zc.
  __device__ __forceinline__ void accumulate(Smem& sm, const float* __restrict__ z, int dp, int cbase, int col0) {
    const int r = threadIdx.x / TPR, q = threadIdx.x % TPR;
#pragma unroll
    for (int c = 0; c < NCH; c++) {
      const int k0 = col0 + c * KC;
      if (k0 >= dp) break;
      __syncthreads();
      stage(sm.zc, z, dp, cbase, k0);
      __syncthreads();
#pragma unroll 4
      for (int j = 0; j < BN; j++) {
        const float h = sm.s[r * SLD + j];
#pragma unroll
        for (int m = 0; m < OPT; m++) v[c][m] = fmaf(h, sm.zc[j * ZLD + q + TPR * m], v[c][m]);
      }
    }
  }

  // write stores the rows, times scale, at their original places in grad,
  // and sets *bad when one is not finite.
  __device__ __forceinline__ void write(Smem&, int rbase, int col0, int n, int d, int dp,
                                        const int* __restrict__ order, float scale, float* __restrict__ grad,
                                        int* bad) {
    const int r = threadIdx.x / TPR, q = threadIdx.x % TPR, row = rbase + r;
    if (row >= n) return;
    float* out = grad + (size_t)order[row] * d;
#pragma unroll
    for (int c = 0; c < NCH; c++)
#pragma unroll
      for (int m = 0; m < OPT; m++) {
        const int k = col0 + c * KC + q + TPR * m;
        if (k < d) {
          const float g = v[c][m] * scale;
          out[k] = g;
          if (!isfinite(g)) *bad = 1;
        }
      }
  }
};

#if SINCERE_TC
template <int P, int NCH>
struct DZ {
  FragC f[NCH];  // warp w: the 16 x 16 tile (w / 2, w % 2) of each 64 x 32 chunk

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int c = 0; c < NCH; c++) wmma::fill_fragment(f[c], 0.f);
  }

  // accumulate reads the column block's rows of Z straight from global
  // memory: scores staged them a moment ago, so they come from L1.
  __device__ __forceinline__ void accumulate(Smem& sm, const float* __restrict__ z, int dp, int cbase, int col0) {
    const int warp = threadIdx.x / 32, wr = warp >> 1, wc = warp & 1;
    __syncthreads();  // the gradient tile is complete
#pragma unroll
    for (int c = 0; c < NCH; c++) {
      const int k0 = col0 + c * KC;
      if (k0 >= dp) break;
      const float* zc = z + (size_t)cbase * dp + k0 + wc * 16;
#pragma unroll 1
      for (int kk = 0; kk < BN; kk += 8) {
        FragA a, alo;
        wmma::load_matrix_sync(a, sm.s + wr * 16 * SLD + kk, SLD);
        prepare<P>(a, alo);
        FragB b, blo;
        wmma::load_matrix_sync(b, zc + (size_t)kk * dp, dp);
        prepare<P>(b, blo);
        product<P>(f[c], a, alo, b, blo);
      }
    }
  }

  __device__ __forceinline__ void write(Smem& sm, int rbase, int col0, int n, int d, int dp,
                                        const int* __restrict__ order, float scale, float* __restrict__ grad,
                                        int* bad) {
    const int warp = threadIdx.x / 32, wr = warp >> 1, wc = warp & 1;
#pragma unroll
    for (int c = 0; c < NCH; c++) {
      const int k0 = col0 + c * KC;
      if (k0 >= dp) break;
      __syncthreads();
      wmma::store_matrix_sync(sm.s + wr * 16 * SLD + wc * 16, f[c], SLD, wmma::mem_row_major);
      __syncthreads();
      // A warp writes one row's 32 columns: 128 contiguous bytes.
      for (int idx = threadIdx.x; idx < BM * KC; idx += NT) {
        const int r = idx / KC, col = idx % KC, row = rbase + r, k = k0 + col;
        if (row < n && k < d) {
          const float g = sm.s[r * SLD + col] * scale;
          grad[(size_t)order[row] * d + k] = g;
          if (!isfinite(g)) *bad = 1;
        }
      }
    }
  }
};
#endif

// merge folds the online log-sum-exp state (om, os) into (m, s): the sums
// are of 2^(t - m).
__device__ __forceinline__ void merge(float& m, double& s, float om, double os) {
  const float M = fmaxf(m, om);
  if (M == -INFINITY) return;  // both empty: both sums are 0
  s = s * (double)exp2f(m - M) + os * (double)exp2f(om - M);
  m = M;
}

// forwardRows is sweep 1. For each row i < n it writes, in base-2 units,
// the online log-sum-exp state of its negatives (negMax, negSum: LSE =
// negMax + log2 negSum) and of its positives, and the sum of its positive
// similarities t_ip.
template <int P>
__device__ void forwardRows(const float* __restrict__ z, const int* __restrict__ lab, int n, int dp, float scale,
                            float* __restrict__ negMax, double* __restrict__ negSum, float* __restrict__ posMax,
                            double* __restrict__ posSum, double* __restrict__ posSim) {
  __shared__ __align__(128) Smem sm;
  const int r = threadIdx.x / TPR, q = threadIdx.x % TPR;
  const int rbase = blockIdx.x * BM, i = rbase + r;
  const int yi = lab[i];
  float mN = -INFINITY, mP = -INFINITY;
  double sN = 0, sP = 0, sT = 0;
  Pipe pipe;
  for (int cbase = 0; cbase < n; cbase += BN) {
    scores<P>(sm, pipe, z, dp, rbase, cbase, cbase + BN < n ? cbase + BN : -1, scale, lab, nullptr, nullptr, nullptr);
    float v[CPT];
    unsigned neg = 0, pos = 0;
    float tN = -INFINITY, tP = -INFINITY, tT = 0.f;
#pragma unroll
    for (int m = 0; m < CPT; m++) {
      const int c = q + TPR * m, j = cbase + c;
      v[m] = sm.s[r * SLD + c];
      if (j < n && j != i) {
        if (sm.yc[c] == yi) {
          pos |= 1u << m;
          tP = fmaxf(tP, v[m]);
          tT += v[m];
        } else {
          neg |= 1u << m;
          tN = fmaxf(tN, v[m]);
        }
      }
    }
    // Raise the running maxima first (exp2f(-inf) = 0 rescales an empty sum).
    if (tN > mN) {
      sN *= (double)exp2f(mN - tN);
      mN = tN;
    }
    if (tP > mP) {
      sP *= (double)exp2f(mP - tP);
      mP = tP;
    }
    float aN = 0.f, aP = 0.f;
#pragma unroll
    for (int m = 0; m < CPT; m++) {
      if ((neg >> m) & 1u) aN += ex2(v[m] - mN);
      if ((pos >> m) & 1u) aP += ex2(v[m] - mP);
    }
    sN += aN;
    sP += aP;
    sT += tT;
  }
#pragma unroll
  for (int off = 1; off < TPR; off <<= 1) {
    const float omN = __shfl_xor_sync(FULL, mN, off), omP = __shfl_xor_sync(FULL, mP, off);
    const double osN = __shfl_xor_sync(FULL, sN, off), osP = __shfl_xor_sync(FULL, sP, off);
    sT += __shfl_xor_sync(FULL, sT, off);
    merge(mN, sN, omN, osN);
    merge(mP, sP, omP, osP);
  }
  if (q == 0 && i < n) {
    negMax[i] = mN;
    negSum[i] = sN;
    posMax[i] = mP;
    posSum[i] = sP;
    posSim[i] = sT;
  }
}

// positiveRows is sweep 2 (SINCERE, eps-SupInfoNCE): with u2[i] = (M_i +
// eps) log2(e) and x = u2[i] - t_ip, it writes for each row i < n the sums
// over its positives of softplus(x ln 2) and sigmoid(x ln 2). Block b visits
// the column blocks [blockLo[b], blockHi[b]) that hold its rows' classes.
template <int P>
__device__ void positiveRows(const float* __restrict__ z, const int* __restrict__ lab, int n, int dp, float scale,
                             const float* __restrict__ u2, const int* __restrict__ blockLo,
                             const int* __restrict__ blockHi, double* __restrict__ spSum,
                             double* __restrict__ sgSum) {
  __shared__ __align__(128) Smem sm;
  const int r = threadIdx.x / TPR, q = threadIdx.x % TPR;
  const int rbase = blockIdx.x * BM, i = rbase + r;
  const int yi = lab[i];
  const float ui = u2[i];
  double sp = 0, sg = 0;
  const int lo = blockLo[blockIdx.x], hi = blockHi[blockIdx.x];
  Pipe pipe;
  for (int cbase = lo; cbase < hi; cbase += BN) {
    scores<P>(sm, pipe, z, dp, rbase, cbase, cbase + BN < hi ? cbase + BN : -1, scale, lab, nullptr, nullptr, nullptr);
    float tsp = 0.f, tsg = 0.f;
#pragma unroll
    for (int m = 0; m < CPT; m++) {
      const int c = q + TPR * m, j = cbase + c;
      if (j < n && j != i && sm.yc[c] == yi) {
        const float x = ui - sm.s[r * SLD + c];
        const float e = ex2(-fabsf(x));  // exp(-|x ln 2|)
        const float inv = 1.f / (1.f + e);
        tsp += fmaxf(x, 0.f) * LN2 + log1pf(e);
        tsg += x >= 0.f ? inv : e * inv;
      }
    }
    sp += tsp;
    sg += tsg;
  }
#pragma unroll
  for (int off = 1; off < TPR; off <<= 1) {
    sp += __shfl_xor_sync(FULL, sp, off);
    sg += __shfl_xor_sync(FULL, sg, off);
  }
  if (q == 0 && i < n) {
    spSum[i] = sp;
    sgSum[i] = sg;
  }
}

// backwardRows is sweep 3: for each column block the gradient tile
//   negative j:  h = p0_i 2^(t + p1_i) + p0_j 2^(t + p1_j)
//   positive j:  SupCon  h = p0_i 2^(t + p1_i) + p0_j 2^(t + p1_j) - (p2_i + p2_j)
//                SINCERE h = -p0_i / (1 + 2^(t - p2_i)) - p0_j / (1 + 2^(t - p2_j))
// (zero on the diagonal and in padding), then dZ_rows += H Z_c. Block
// (x, y) owns rows [64 x, 64 x + 64) and dZ columns [32 NCH y, 32 NCH (y+1))
// and writes them, times scale (1 / tau), to grad in the original order,
// setting *bad when a value is not finite.
template <int P, int NCH>
__device__ void backwardRows(const float* __restrict__ z, const int* __restrict__ lab, const int* __restrict__ order,
                             int n, int d, int dp, float scale, float outScale, int supcon,
                             const float* __restrict__ p0, const float* __restrict__ p1,
                             const float* __restrict__ p2, float* __restrict__ grad, int* bad) {
  __shared__ __align__(128) Smem sm;
  const int r = threadIdx.x / TPR, q = threadIdx.x % TPR;
  const int rbase = blockIdx.x * BM, i = rbase + r, col0 = blockIdx.y * NCH * KC;
  const int yi = lab[i];
  const float a0 = p0[i], a1 = p1[i], a2 = p2[i];
  DZ<P, NCH> dz;
  dz.zero();
  Pipe pipe;
  for (int cbase = 0; cbase < n; cbase += BN) {
    scores<P>(sm, pipe, z, dp, rbase, cbase, cbase + BN < n ? cbase + BN : -1, scale, lab, p0, p1, p2);
#pragma unroll
    for (int m = 0; m < CPT; m++) {
      const int c = q + TPR * m, j = cbase + c;
      float h = 0.f;
      if (j < n && j != i) {
        const float t = sm.s[r * SLD + c];
        if (sm.yc[c] != yi) {
          h = a0 * ex2(t + a1) + sm.p0[c] * ex2(t + sm.p1[c]);
        } else if (supcon) {
          h = a0 * ex2(t + a1) + sm.p0[c] * ex2(t + sm.p1[c]) - (a2 + sm.p2[c]);
        } else {
          h = -a0 / (1.f + ex2(t - a2)) - sm.p0[c] / (1.f + ex2(t - sm.p2[c]));
        }
      }
      sm.s[r * SLD + c] = h;
    }
    dz.accumulate(sm, z, dp, cbase, col0);
  }
  dz.write(sm, rbase, col0, n, d, dp, order, outScale, grad, bad);
}

}  // namespace sincere

// ---------------------------------------------------------------------------
// Entry points. Names: <sweep>_<precision>[_d<32 NCH>].

#define SINCERE_FORWARD(NAME, P)                                                                                \
  extern "C" __global__ void __launch_bounds__(sincere::NT, 2)                                                  \
      NAME(const float* __restrict__ z, const int* __restrict__ lab, int n, int dp, float scale,                \
           float* negMax, double* negSum, float* posMax, double* posSum, double* posSim) {                      \
    sincere::forwardRows<P>(z, lab, n, dp, scale, negMax, negSum, posMax, posSum, posSim);                      \
  }                                                                                                             \
  EMU_REGISTER(NAME)

#define SINCERE_POSITIVES(NAME, P)                                                                              \
  extern "C" __global__ void __launch_bounds__(sincere::NT, 2)                                                  \
      NAME(const float* __restrict__ z, const int* __restrict__ lab, int n, int dp, float scale,                \
           const float* u2, const int* blockLo, const int* blockHi, double* spSum, double* sgSum) {             \
    sincere::positiveRows<P>(z, lab, n, dp, scale, u2, blockLo, blockHi, spSum, sgSum);                         \
  }                                                                                                             \
  EMU_REGISTER(NAME)

#define SINCERE_BACKWARD(NAME, P, NCH)                                                                          \
  extern "C" __global__ void __launch_bounds__(sincere::NT, 2)                                                  \
      NAME(const float* __restrict__ z, const int* __restrict__ lab, const int* __restrict__ order, int n,      \
           int d, int dp, float scale, float outScale, int supcon, const float* p0, const float* p1,            \
           const float* p2, float* grad, int* bad) {                                                            \
    sincere::backwardRows<P, NCH>(z, lab, order, n, d, dp, scale, outScale, supcon, p0, p1, p2, grad, bad);     \
  }                                                                                                             \
  EMU_REGISTER(NAME)

// SINCERE_PRECISION defines one precision's kernels: forward_NAME,
// positives_NAME and backward_NAME_d{32,64,128,256}.
#define SINCERE_PRECISION(NAME, P)                      \
  SINCERE_FORWARD(forward_##NAME, P)                    \
  SINCERE_POSITIVES(positives_##NAME, P)                \
  SINCERE_BACKWARD(backward_##NAME##_d32, P, 1)         \
  SINCERE_BACKWARD(backward_##NAME##_d64, P, 2)         \
  SINCERE_BACKWARD(backward_##NAME##_d128, P, 4)        \
  SINCERE_BACKWARD(backward_##NAME##_d256, P, 8)

SINCERE_PRECISION(fp32, sincere::FP32)
#if SINCERE_TC
SINCERE_PRECISION(tf32, sincere::TF32)
SINCERE_PRECISION(tf32x3, sincere::TF32X3)
#endif

// gather_rows sets zs (np x dp) to the rows of z (n x d) in the order given,
// zero padded, and lowers *bad to the smallest index into z of a value that
// is NaN or infinite (the host sets it to ~0 first).
extern "C" __global__ void gather_rows(const float* __restrict__ z, const int* __restrict__ order, int n, int d,
                                       int np, int dp, float* __restrict__ zs, unsigned long long* bad) {
  const size_t total = (size_t)np * dp;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
    const int k = (int)(idx / dp), c = (int)(idx % dp);
    float v = 0.f;
    if (k < n && c < d) {
      const size_t from = (size_t)order[k] * d + c;
      v = z[from];
      if (!isfinite(v)) atomicMin(bad, (unsigned long long)from);
    }
    zs[idx] = v;
  }
}
EMU_REGISTER(gather_rows)

// l2_normalize sets each row of y (rows x cols) to the row of x over its norm
// (floored at 1e-12, as F.normalize) and saves the norms. One warp per row.
extern "C" __global__ void l2_normalize(const float* __restrict__ x, int rows, int cols, float* __restrict__ y,
                                        float* __restrict__ norms) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;  // whole warps leave together
  const float* xr = x + (size_t)row * cols;
  double ss = 0;
  for (int k = lane; k < cols; k += 32) ss += (double)xr[k] * xr[k];
  const double norm = fmax(sqrt(sincere::warpSum(ss)), 1e-12);
  const double inv = 1.0 / norm;
  for (int k = lane; k < cols; k += 32) y[(size_t)row * cols + k] = (float)(xr[k] * inv);
  if (lane == 0) norms[row] = (float)norm;
}
EMU_REGISTER(l2_normalize)

// l2_normalize_backward sets dx = (dy - y (y . dy)) / norm, row by row.
extern "C" __global__ void l2_normalize_backward(const float* __restrict__ y, const float* __restrict__ norms,
                                                 const float* __restrict__ dy, int rows, int cols,
                                                 float* __restrict__ dx) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float *yr = y + (size_t)row * cols, *gr = dy + (size_t)row * cols;
  double dot = 0;
  for (int k = lane; k < cols; k += 32) dot += (double)yr[k] * gr[k];
  dot = sincere::warpSum(dot);
  const double inv = 1.0 / (double)norms[row];
  for (int k = lane; k < cols; k += 32) dx[(size_t)row * cols + k] = (float)((gr[k] - yr[k] * dot) * inv);
}
EMU_REGISTER(l2_normalize_backward)

// ---------------------------------------------------------------------------
// The per-row derivations and the loss's reduction on the device (see the
// launch sequence at the top). CPU twin: fused.RowStats.SortLabels and
// GradientParams (internal/kernels/fused) and the loss sums of the CPU
// engine's Compute (internal/kernels/cpu/engine.go).

namespace sincere {

constexpr double LOG2E_D = 1.4426950408889634;
constexpr double LN2_D = 0.6931471805599453;

// lse2 turns a base-2 online log-sum-exp state (the sum is of 2^(t - m))
// into a natural log-sum-exp (-inf for an empty set).
__device__ __forceinline__ double lse2(float m, double sum) {
  if (sum == 0 || m == -INFINITY) return -INFINITY;
  return ((double)m + log2(sum)) * LN2_D;
}

__device__ __forceinline__ double logAddExp(double a, double b) {
  if (a < b) {
    const double t = a;
    a = b;
    b = t;
  }
  if (a == -INFINITY) return a;
  return a + log1p(exp(b - a));
}

// classBounds returns the first row of the class of sorted label y and the
// row past its last, in labels[0, n) (non-decreasing).
__device__ __forceinline__ void classBounds(const int* __restrict__ labels, int n, int y, int& lo, int& hi) {
  int a = 0, b = n;  // first row with label >= y
  while (a < b) {
    const int mid = (a + b) / 2;
    if (labels[mid] < y) {
      a = mid + 1;
    } else {
      b = mid;
    }
  }
  lo = a;
  b = n;  // first row with label > y
  while (a < b) {
    const int mid = (a + b) / 2;
    if (labels[mid] <= y) {
      a = mid + 1;
    } else {
      b = mid;
    }
  }
  hi = a;
}

}  // namespace sincere

// contrastive_setup sets positives[r] = |P(r)| (the size of sorted row r's
// class less one; 0 for padding rows r >= n) and, for each row block b <
// np / 64, blockLo[b] and blockHi[b]: the column blocks (in rows, multiples
// of 64) from the start of the class of its first row to the end of the
// class of its last. labels are the sorted class indices (non-decreasing
// over [0, n), -1 after).
extern "C" __global__ void __launch_bounds__(sincere::NT)
    contrastive_setup(const int* __restrict__ labels, int n, int np, int* __restrict__ positives,
                      int* __restrict__ blockLo, int* __restrict__ blockHi) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= np) return;
  int lo, hi;
  if (r < n) {
    sincere::classBounds(labels, n, labels[r], lo, hi);
    positives[r] = hi - lo - 1;
  } else {
    positives[r] = 0;
  }
  if (r < np / sincere::BM) {
    const int first = r * sincere::BM, last = min(n, first + sincere::BM) - 1;
    sincere::classBounds(labels, n, labels[first], lo, hi);
    blockLo[r] = lo / sincere::BM * sincere::BM;
    sincere::classBounds(labels, n, labels[last], lo, hi);
    blockHi[r] = (hi + sincere::BM - 1) / sincere::BM * sincere::BM;
  }
}
EMU_REGISTER(contrastive_setup)

// supcon_rows derives SupCon's per-row loss terms and backward parameters
// from the forward sweep's statistics: with L_i = log(sum over a != i of
// exp s_ia), term_i = L_i - (sum_p s_ip) / |P(i)|; p0 = scale / anchors,
// p1 = -L_i log2(e), p2 = c_i = scale / (anchors |P(i)|); rows without
// positives, and padding, get term 0 and (0, -inf, 0).
extern "C" __global__ void __launch_bounds__(sincere::NT)
    supcon_rows(const float* __restrict__ negMax, const double* __restrict__ negSum,
                const float* __restrict__ posMax, const double* __restrict__ posSum,
                const double* __restrict__ posSim, const int* __restrict__ positives, int n, int np, int anchors,
                double scale, double* __restrict__ term, float* __restrict__ p0, float* __restrict__ p1,
                float* __restrict__ p2) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= np) return;
  const int pos = r < n ? positives[r] : 0;
  if (pos == 0) {
    if (r < n) term[r] = 0;
    p0[r] = 0.f;
    p1[r] = -INFINITY;
    p2[r] = 0.f;
    return;
  }
  const double L = sincere::logAddExp(sincere::lse2(negMax[r], negSum[r]), sincere::lse2(posMax[r], posSum[r]));
  term[r] = L - posSim[r] * sincere::LN2_D / pos;
  p0[r] = (float)(scale / anchors);
  p1[r] = (float)(-L * sincere::LOG2E_D);
  p2[r] = (float)(scale / anchors / pos);
}
EMU_REGISTER(supcon_rows)

// sincere_u2 sets u2[r] = (M_r + eps) log2(e), M_r the log-sum-exp of row
// r's negatives (0 for padding rows).
extern "C" __global__ void __launch_bounds__(sincere::NT)
    sincere_u2(const float* __restrict__ negMax, const double* __restrict__ negSum, int n, int np, double eps,
               float* __restrict__ u2) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= np) return;
  u2[r] = r < n ? (float)((sincere::lse2(negMax[r], negSum[r]) + eps) * sincere::LOG2E_D) : 0.f;
}
EMU_REGISTER(sincere_u2)

// sincere_rows derives SINCERE's (and eps-SupInfoNCE's) per-row loss terms
// and backward parameters from the sweeps' statistics: term_i = (sum_p
// softplus(u_i - s_ip)) / |P(i)| - eps; p0 = c_i = scale / (anchors |P(i)|),
// p1 = (log(sum_p sigmoid(u_i - s_ip)) - M_i) log2(e), p2 = u2_i; rows
// without positives, and padding, get term 0 and (0, -inf, u2_i).
extern "C" __global__ void __launch_bounds__(sincere::NT)
    sincere_rows(const float* __restrict__ negMax, const double* __restrict__ negSum,
                 const double* __restrict__ spSum, const double* __restrict__ sgSum, const float* __restrict__ u2,
                 const int* __restrict__ positives, int n, int np, int anchors, double scale, double eps,
                 double* __restrict__ term, float* __restrict__ p0, float* __restrict__ p1, float* __restrict__ p2) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= np) return;
  const int pos = r < n ? positives[r] : 0;
  p2[r] = u2[r];
  if (pos == 0) {
    if (r < n) term[r] = 0;
    p0[r] = 0.f;
    p1[r] = -INFINITY;
    return;
  }
  term[r] = spSum[r] / pos - eps;
  p0[r] = (float)(scale / anchors / pos);
  p1[r] = (float)((log(sgSum[r]) - sincere::lse2(negMax[r], negSum[r])) * sincere::LOG2E_D);
}
EMU_REGISTER(sincere_rows)

// contrastive_loss sets *loss = factor sum_{i < n} term_i (factor = scale /
// anchors), added in a fixed order: thread t takes terms t, t + 256, ...,
// then a fixed tree. One block.
extern "C" __global__ void __launch_bounds__(sincere::NT)
    contrastive_loss(const double* __restrict__ term, int n, double factor, double* __restrict__ loss) {
  const double s = sincere::fixedSum(term, n);
  if (threadIdx.x == 0) *loss = s * factor;
}
EMU_REGISTER(contrastive_loss)
