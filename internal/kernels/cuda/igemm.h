// igemm.h: the (implicit) GEMM engine under gemm.cu and conv.cu.
//
// A block computes a BM x BN tile of C = A B (A is M x Kr, B is Kr x N),
// over a range [kBegin, kEnd) of the reduction, and hands each value to an
// epilogue functor. The operands come from sources that say, for a row
// (of A) or column (of B) mn and a reduction index k, where a short vector
// of VW consecutive elements starts in global memory and how many of them
// exist (the rest are zeros: tile edges, zero padding of a convolution,
// the end of the reduction). A source's vectors run either along k (A
// row-major, B^T row-major, image channels of a convolution's patches) or
// along mn; nothing is ever gathered into a patch matrix in memory.
//
// Two precisions, one structure:
//   TF32 (sm_80+): 8 warps in a 2 x 4 (128 x 128 tile) or 4 x 2 (128 x 64)
//     grid, each with a 64 x 32 or 32 x 32 warp tile of 16 x 16 WMMA
//     accumulators (m16n16k8 TF32 fragments: mma.sync); k staged 16 at a
//     time through shared memory by cp.async (16-byte copies when VW = 4,
//     zero filled past the edges), two stages: the next stage loads while
//     the current one is multiplied. Each operand keeps its global layout
//     in shared memory (the fragments are loaded row- or column-major to
//     match); rows are padded (+4 floats when k runs along the row, +8
//     when mn does) so that the fragment loads hit 32 distinct banks.
//     Operands are rounded to TF32 (cvt.rna) as the fragments load.
//   FP32 (any GPU): 256 threads in a 16 x 16 grid, each with an 8 x 8 (or
//     8 x 4) register tile split in 4 x 4 quarters 64 apart; k staged 8 at
//     a time through registers into shared memory laid out k-major (A as
//     As[k][m], B as Bs[k][n], transposed on the way in when a source runs
//     along k), two stages, one barrier per stage; each thread reads its
//     operands as float4s (broadcast within a warp for A).
// Shared memory per block: 40 KiB (TF32, 128 x 128), 30 KiB (TF32,
// 128 x 64), 17 KiB or 13 KiB (FP32): under the 48 KiB every GPU grants
// without an opt-in.

#pragma once

#include "common.h"

#ifndef SINCERE_EMU
#include <type_traits>
#endif

namespace sincere {
namespace ig {

enum Prec { FP32 = 0, TF32 = 1 };

// lds4 reads 16 bytes of shared memory. On the GPU it is one ld.shared.v4
// the optimiser cannot split or merge: with plain float4 loads, nvcc 11.8
// decides differently from run to run whether to reload two of the values
// (its load vectorizer's order depends on addresses in the compiler), and
// the committed PTX must be reproducible.
__device__ __forceinline__ float4 lds4(const float* p) {
#ifdef SINCERE_EMU
  return *reinterpret_cast<const float4*>(p);
#else
  float4 v;
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(s));
  return v;
#endif
}

// quads reads N values of a thread's register tile from shared memory: N / 4
// float4s, 64 values apart (the thread's quarters of the tile).
template <int N>
__device__ __forceinline__ void quads(float (&v)[N], const float* p) {
#pragma unroll
  for (int g = 0; g < N / 4; g++) {
    const float4 q = lds4(p + 64 * g);
    v[4 * g] = q.x;
    v[4 * g + 1] = q.y;
    v[4 * g + 2] = q.z;
    v[4 * g + 3] = q.w;
  }
}

// Vec is where an operand vector starts and how many of its elements exist.
struct Vec {
  const float* p;  // valid even when n == 0 (nothing is read then)
  int n;           // 0..VW
};

// Cfg is a tile configuration.
template <int P, int BM_, int BN_>
struct Cfg {
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int BK = P == TF32 ? 16 : 8;
  // TF32 warp grid
  static constexpr int WARPS_N = BN == 128 ? 4 : 2;
  static constexpr int WARPS_M = 8 / WARPS_N;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
  static constexpr int FM = WM / 16, FN = WN / 16;
  // FP32 thread grid: 16 x 16 threads, TM x TN values each
  static constexpr int TM = BM / 16, TN = BN / 16;
  static_assert(BM == 128 && (BN == 128 || BN == 64), "tile shapes");
};

// Layout of one operand's stage in shared memory. alongK: the source's
// vectors run along k. MN is the operand's tile extent (BM or BN).
template <int P, int MN, int BK, bool ALONGK>
struct Stage {
  // TF32 keeps the global layout: [MN][BK + 4] when k runs along the row,
  // else [BK][MN + 8]. FP32 is always k-major: [BK][MN + 4].
  static constexpr int LD = P == TF32 ? (ALONGK ? BK + 4 : MN + 8) : MN + 4;
  static constexpr int ROWS = P == TF32 ? (ALONGK ? MN : BK) : BK;
  static constexpr int FLOATS = ROWS * LD;
  // vectors of the tile: outer x inner, the inner index along the vector
  static constexpr int INNER = ALONGK ? BK : MN;
  static constexpr int OUTER = ALONGK ? MN : BK;
};

// Loader stages one operand: thread t owns the vectors v = t + 256 j of the
// tile's OUTER x INNER / VW vectors (inner index fastest, so that
// neighbouring threads read neighbouring addresses).
template <int P, int MN, int BK, bool ALONGK, int VW, class Src>
struct Loader {
  using S = Stage<P, MN, BK, ALONGK>;
  static constexpr int VPR = S::INNER / VW;  // vectors per outer row
  static constexpr int TOTAL = S::OUTER * VPR;
  static constexpr int NV = (TOTAL + NT - 1) / NT;
  typename Src::MN mn[NV];  // the source's view of each vector's row / column
  int o[NV], i[NV];         // tile coordinates: outer, inner (first element)
  float r[NV][VW];          // FP32: the stage in flight

  __device__ __forceinline__ void init(const Src& src, int mn0) {
#pragma unroll
    for (int j = 0; j < NV; j++) {
      const int v = threadIdx.x + NT * j;
      o[j] = v / VPR;
      i[j] = (v % VPR) * VW;
      const int mnl = ALONGK ? o[j] : i[j];
      mn[j] = src.mn(mn0 + mnl);
    }
  }

  __device__ __forceinline__ bool mine(int j) const { return TOTAL % NT == 0 || (int)threadIdx.x + NT * j < TOTAL; }

  __device__ __forceinline__ Vec at(const Src& src, int j, int k0) const {
    const int k = k0 + (ALONGK ? i[j] : o[j]);
    return src.at(mn[j], k);
  }

#if SINCERE_TC
  // issue starts the stage's copies (TF32).
  __device__ __forceinline__ void issue(const Src& src, float* sm, int k0) const {
#pragma unroll
    for (int j = 0; j < NV; j++) {
      if (!mine(j)) continue;
      const Vec v = at(src, j, k0);
      cpAsync<4 * VW>(sm + o[j] * S::LD + i[j], v.p, 4 * v.n);
    }
  }
#endif

  // fetch loads the stage into registers (FP32).
  __device__ __forceinline__ void fetch(const Src& src, int k0) {
#pragma unroll
    for (int j = 0; j < NV; j++) {
      if (!mine(j)) continue;
      const Vec v = at(src, j, k0);
      if constexpr (VW == 4) {
        if (v.n == 4) {
          const float4 q = *reinterpret_cast<const float4*>(v.p);
          r[j][0] = q.x;
          r[j][1] = q.y;
          r[j][2] = q.z;
          r[j][3] = q.w;
          continue;
        }
      }
#pragma unroll
      for (int e = 0; e < VW; e++) r[j][e] = e < v.n ? v.p[e] : 0.f;
    }
  }

  // store writes the fetched stage k-major (FP32).
  __device__ __forceinline__ void store(float* sm) const {
#pragma unroll
    for (int j = 0; j < NV; j++) {
      if (!mine(j)) continue;
      if constexpr (ALONGK) {
        // the vector is VW consecutive k of one row: a column of the stage
#pragma unroll
        for (int e = 0; e < VW; e++) sm[(i[j] + e) * S::LD + o[j]] = r[j][e];
      } else if constexpr (VW == 4) {
        *reinterpret_cast<float4*>(sm + o[j] * S::LD + i[j]) = make_float4(r[j][0], r[j][1], r[j][2], r[j][3]);
      } else {
        sm[o[j] * S::LD + i[j]] = r[j][0];
      }
    }
  }
};

// Block is one block's tile product: run() computes the BM x BN tile at
// (m0, n0) over [kBegin, kEnd) and passes every value of it to out(m, n, v)
// (global coordinates; out checks the bounds). AK and BKV say whether the
// vectors of A and of B run along k.
template <int P, int BM, int BN, bool AK, bool BKV, int VWA, int VWB, class SrcA, class SrcB>
struct Block {
  using C = Cfg<P, BM, BN>;
  static constexpr int BK = C::BK;
  using SA = Stage<P, BM, BK, AK>;
  using SB = Stage<P, BN, BK, BKV>;
  static constexpr int STAGE = SA::FLOATS + SB::FLOATS;
  static constexpr int SMEM = 2 * STAGE;  // floats
  static_assert(SA::FLOATS % 8 == 0 && SB::FLOATS % 8 == 0, "32-byte aligned stages");
  static_assert(P == FP32 || SMEM >= 8 * 16 * 20, "the epilogue's scratch fits");
  static_assert(SMEM * 4 <= 48 * 1024, "shared memory within the default 48 KiB");

  template <class Out>
  __device__ __forceinline__ static void run(float* sm, const SrcA& srcA, const SrcB& srcB, int m0, int n0,
                                             int kBegin, int kEnd, Out& out) {
    Loader<P, BM, BK, AK, VWA, SrcA> la;
    Loader<P, BN, BK, BKV, VWB, SrcB> lb;
    la.init(srcA, m0);
    lb.init(srcB, n0);
    const int nk = kEnd > kBegin ? (kEnd - kBegin + BK - 1) / BK : 0;
    if constexpr (P == TF32) {
#if SINCERE_TC
      runTF32(sm, la, lb, srcA, srcB, m0, n0, kBegin, nk, out);
#endif
    } else {
      runFP32(sm, la, lb, srcA, srcB, m0, n0, kBegin, nk, out);
    }
  }

  template <class LA, class LB, class Out>
  __device__ __forceinline__ static void runFP32(float* sm, LA& la, LB& lb, const SrcA& srcA, const SrcB& srcB,
                                                 int m0, int n0, int kBegin, int nk, Out& out) {
    constexpr int TM = C::TM, TN = C::TN;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[TM][TN];
#pragma unroll
    for (int a = 0; a < TM; a++)
#pragma unroll
      for (int b = 0; b < TN; b++) acc[a][b] = 0.f;
    if (nk > 0) {
      la.fetch(srcA, kBegin);
      lb.fetch(srcB, kBegin);
      la.store(sm);
      lb.store(sm + SA::FLOATS);
    }
    __syncthreads();
    for (int it = 0; it < nk; it++) {
      const bool more = it + 1 < nk;
      if (more) {
        la.fetch(srcA, kBegin + (it + 1) * BK);
        lb.fetch(srcB, kBegin + (it + 1) * BK);
      }
      const float* As = sm + (it & 1) * STAGE;
      const float* Bs = As + SA::FLOATS;
#pragma unroll
      for (int kk = 0; kk < BK; kk++) {
        float a[TM], b[TN];
        quads<TM>(a, As + kk * SA::LD + ty * 4);
        quads<TN>(b, Bs + kk * SB::LD + tx * 4);
#pragma unroll
        for (int x = 0; x < TM; x++)
#pragma unroll
          for (int y = 0; y < TN; y++) acc[x][y] = fmaf(a[x], b[y], acc[x][y]);
      }
      if (more) {
        float* next = sm + ((it + 1) & 1) * STAGE;
        la.store(next);
        lb.store(next + SA::FLOATS);
      }
      __syncthreads();
    }
#pragma unroll
    for (int x = 0; x < TM; x++)
#pragma unroll
      for (int y = 0; y < TN; y++)
        out(m0 + ty * 4 + 64 * (x / 4) + x % 4, n0 + tx * 4 + 64 * (y / 4) + y % 4, acc[x][y]);
  }

#if SINCERE_TC
  using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                       typename std::conditional<AK, nvcuda::wmma::row_major,
                                                                 nvcuda::wmma::col_major>::type>;
  using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                       typename std::conditional<BKV, nvcuda::wmma::col_major,
                                                                 nvcuda::wmma::row_major>::type>;
  using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;

  template <class F>
  __device__ __forceinline__ static void toTF32(F& f) {
#pragma unroll
    for (int e = 0; e < f.num_elements; e++) f.x[e] = nvcuda::wmma::__float_to_tf32(f.x[e]);
  }

  template <class LA, class LB, class Out>
  __device__ __forceinline__ static void runTF32(float* sm, LA& la, LB& lb, const SrcA& srcA, const SrcB& srcB,
                                                 int m0, int n0, int kBegin, int nk, Out& out) {
    namespace wmma = nvcuda::wmma;
    constexpr int FM = C::FM, FN = C::FN;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / C::WARPS_N) * C::WM, wn = (warp % C::WARPS_N) * C::WN;
    FragC acc[FM][FN];
#pragma unroll
    for (int a = 0; a < FM; a++)
#pragma unroll
      for (int b = 0; b < FN; b++) wmma::fill_fragment(acc[a][b], 0.f);
    if (nk > 0) {
      la.issue(srcA, sm, kBegin);
      lb.issue(srcB, sm + SA::FLOATS, kBegin);
    }
    cpAsyncCommit();
    for (int it = 0; it < nk; it++) {
      if (it + 1 < nk) {
        float* next = sm + ((it + 1) & 1) * STAGE;
        la.issue(srcA, next, kBegin + (it + 1) * BK);
        lb.issue(srcB, next + SA::FLOATS, kBegin + (it + 1) * BK);
      }
      cpAsyncCommit();
      cpAsyncWait<1>();  // this stage's group has landed; the next may fly
      __syncthreads();
      const float* As = sm + (it & 1) * STAGE;
      const float* Bs = As + SA::FLOATS;
#pragma unroll
      for (int kk = 0; kk < BK; kk += 8) {
        FragA a[FM];
        FragB b[FN];
#pragma unroll
        for (int f = 0; f < FM; f++) {
          const int row = wm + 16 * f;
          wmma::load_matrix_sync(a[f], AK ? As + row * SA::LD + kk : As + kk * SA::LD + row, SA::LD);
          toTF32(a[f]);
        }
#pragma unroll
        for (int f = 0; f < FN; f++) {
          const int col = wn + 16 * f;
          wmma::load_matrix_sync(b[f], BKV ? Bs + col * SB::LD + kk : Bs + kk * SB::LD + col, SB::LD);
          toTF32(b[f]);
        }
#pragma unroll
        for (int x = 0; x < FM; x++)
#pragma unroll
          for (int y = 0; y < FN; y++) wmma::mma_sync(acc[x][y], a[x], b[y], acc[x][y]);
      }
      __syncthreads();  // everyone is done with this stage before it is refilled
    }
    // Epilogue: each warp passes its fragments through a 16 x 20 scratch
    // of its own; lane l takes column l % 16 of rows l / 16, + 2, ...
    cpAsyncWaitAll();
    float* scratch = sm + warp * 16 * 20;
    const int col = lane % 16;
#pragma unroll
    for (int x = 0; x < FM; x++)
#pragma unroll
      for (int y = 0; y < FN; y++) {
        wmma::store_matrix_sync(scratch, acc[x][y], 20, wmma::mem_row_major);
        __syncwarp();
#pragma unroll
        for (int e = 0; e < 8; e++) {
          const int row = lane / 16 + 2 * e;
          out(m0 + wm + 16 * x + row, n0 + wn + 16 * y + col, scratch[row * 20 + col]);
        }
        __syncwarp();
      }
  }
#endif
};

// Matrix is a strided row-major matrix as a source: element (mn, k) is at
// base[mn ld + k] (alongK) or base[k ld + mn]; rows mn < mnEnd and k < kEnd
// exist. With VW = 4 the host guarantees 16-byte alignment of base and ld.
template <bool ALONGK, int VW>
struct Matrix {
  const float* base;
  int ld, mnEnd, kEnd;
  struct MN {
    int mn;
  };
  __device__ __forceinline__ MN mn(int i) const { return MN{i}; }
  __device__ __forceinline__ Vec at(MN r, int k) const {
    if (ALONGK) {
      const int n = r.mn < mnEnd ? max(0, min(VW, kEnd - k)) : 0;
      return Vec{n > 0 ? base + (size_t)r.mn * ld + k : base, n};
    }
    const int n = k < kEnd ? max(0, min(VW, mnEnd - r.mn)) : 0;
    return Vec{n > 0 ? base + (size_t)k * ld + r.mn : base, n};
  }
};

}  // namespace ig
}  // namespace sincere
