// common.h: what every kernel family of internal/kernels/cuda shares: the
// switch between the GPU (nvcc) and the CPU emulator (SINCERE_EMU, emu.h),
// the tensor-core switch, asynchronous copies, fast exponentials, warp sums
// and the launch conventions.
//
// Launch conventions of every .cu here:
//   - every kernel is extern "C" and takes its parameters in 8-byte slots
//     (pointers; int, float and long long values in the low bytes; double
//     as its bits), in the order of its signature;
//   - blockDim is 256 threads (sincere::NT) unless a kernel's comment says
//     otherwise; grids are given per kernel;
//   - no kernel uses floating-point atomics, and no result depends on the
//     grid's schedule: reductions split across blocks write per-block
//     partials that a second kernel adds in a fixed order.
//
// With SINCERE_EMU defined (the emulator's build), emu.h turns the CUDA
// dialect into C++ and EMU_REGISTER records each kernel by name; for nvcc
// EMU_REGISTER expands to nothing.
#pragma once

#ifdef SINCERE_EMU
#include "emu.h"
#define SINCERE_TC 1
#else
#include <mma.h>
#if __CUDA_ARCH__ >= 800
#define SINCERE_TC 1
#else
#define SINCERE_TC 0
#endif
#endif

#ifndef EMU_REGISTER
#define EMU_REGISTER(NAME)
#endif

namespace sincere {

constexpr int NT = 256;  // threads per block, unless a kernel says otherwise
constexpr unsigned FULL = 0xffffffffu;

// ex2 is 2^x, fast: one special-function instruction.
__device__ __forceinline__ float ex2(float x) {
#ifdef SINCERE_EMU
  return std::exp2(x);
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

// warpSum adds v over the 32 lanes of a warp; every lane gets the sum.
template <class T>
__device__ __forceinline__ T warpSum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL, v, off);
  return v;
}

// warpMax is the largest v over the 32 lanes of a warp, for every lane.
__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL, v, off));
  return v;
}

// reluMask returns g where a ReLU output y is not zero, else 0: the CPU
// device's test on y's bits (y is never negative; a NaN passes g on).
__device__ __forceinline__ float reluMask(float y, float g) { return __float_as_uint(y) != 0u ? g : 0.f; }

// relu is max(v, 0) that passes NaN on, as Go's max does.
__device__ __forceinline__ float relu(float v) { return v <= 0.f ? 0.f : v; }

// aligned16 says whether a pointer may be read or written as float4.
__device__ __forceinline__ bool aligned16(const void* p) { return ((unsigned long long)p & 15u) == 0; }

// ---------------------------------------------------------------------------
// Flat loops and fixed-order reductions (elementwise.cu, norm.cu).

constexpr int CR_LANES = 32;            // columns of a column-reduction block
constexpr int CR_ROWS = NT / CR_LANES;  // row lanes of a column-reduction block

// forEach runs one(i) for every i in [0, n), or four(i) for the quads
// [4i, 4i + 4) and one for the tail when vec is set, over the whole grid.
template <class One, class Four>
__device__ __forceinline__ void forEach(long long n, bool vec, One one, Four four) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long done = 0;
  if (vec) {
    const long long n4 = n / 4;
    for (long long i = t; i < n4; i += stride) four(i);
    done = n4 * 4;
  }
  for (long long i = done + t; i < n; i += stride) one(i);
}

__device__ __forceinline__ float4 ld4(const float* p, long long i) { return reinterpret_cast<const float4*>(p)[i]; }
__device__ __forceinline__ void st4(float* p, long long i, float4 v) { reinterpret_cast<float4*>(p)[i] = v; }

// colSums is the body of a column-reduction block: rows [r0, r1) of
// column col (< cols) of the rows x cols matrix that f(row, col) reads,
// thread (lane, r) taking rows r0 + r, r0 + r + 8, ... in float; the row
// lanes are then added in order in float64. Thread lane (r == 0) gets the
// block's sums (NV of them) in out; the others get garbage.
template <int NV, class F>
__device__ __forceinline__ void colSums(int r0, int r1, int col, int cols, F f, double (&out)[NV]) {
  __shared__ double part[NV][CR_ROWS][CR_LANES];
  const int lane = threadIdx.x % CR_LANES, rl = threadIdx.x / CR_LANES;
  float acc[NV];
#pragma unroll
  for (int v = 0; v < NV; v++) acc[v] = 0.f;
  if (col < cols) {
#pragma unroll 4
    for (int r = r0 + rl; r < r1; r += CR_ROWS) {
      float a[NV];
      f(r, col, a);
#pragma unroll
      for (int v = 0; v < NV; v++) acc[v] += a[v];
    }
  }
#pragma unroll
  for (int v = 0; v < NV; v++) part[v][rl][lane] = acc[v];
  __syncthreads();
  if (rl == 0) {
#pragma unroll
    for (int v = 0; v < NV; v++) {
      double s = 0;
      for (int q = 0; q < CR_ROWS; q++) s += part[v][q][lane];
      out[v] = s;
    }
  }
  __syncthreads();  // part may be reused
}

// partSums adds, for column col, the chunks x cols float64 partials
// part[(k NV + v) cols + col] over the chunks in a fixed order: 8 lanes
// take chunks q, q + 8, ..., then the lanes are added in order. Thread
// lane (r == 0) gets the totals.
template <int NV>
__device__ __forceinline__ void partSums(const double* __restrict__ part, int chunks, int col, int cols,
                                         double (&out)[NV]) {
  __shared__ double acc[NV][CR_ROWS][CR_LANES];
  const int lane = threadIdx.x % CR_LANES, rl = threadIdx.x / CR_LANES;
  double s[NV];
#pragma unroll
  for (int v = 0; v < NV; v++) s[v] = 0;
  if (col < cols) {
    for (int k = rl; k < chunks; k += CR_ROWS)
#pragma unroll
      for (int v = 0; v < NV; v++) s[v] += part[((size_t)k * NV + v) * cols + col];
  }
#pragma unroll
  for (int v = 0; v < NV; v++) acc[v][rl][lane] = s[v];
  __syncthreads();
  if (rl == 0) {
#pragma unroll
    for (int v = 0; v < NV; v++) {
      double t = 0;
      for (int q = 0; q < CR_ROWS; q++) t += acc[v][q][lane];
      out[v] = t;
    }
  }
  __syncthreads();
}

// blockSum adds one float64 per thread over the block in a fixed tree;
// thread 0 gets the sum.
__device__ __forceinline__ double blockSum(double v) {
  __shared__ double s[NT];
  s[threadIdx.x] = v;
  __syncthreads();
#pragma unroll
  for (int h = NT / 2; h > 0; h >>= 1) {
    if ((int)threadIdx.x < h) s[threadIdx.x] += s[threadIdx.x + h];
    __syncthreads();
  }
  return s[0];
}

// fixedSum returns, in thread 0, the sum of x[0, n) added in a fixed order:
// thread t takes x[t], x[t + 256], ..., then blockSum. One block of 256.
__device__ __forceinline__ double fixedSum(const double* __restrict__ x, int n) {
  double s = 0;
  for (int i = threadIdx.x; i < n; i += NT) s += x[i];
  return blockSum(s);
}


#if SINCERE_TC
// Asynchronous copies (sm_80+): global to shared memory without passing
// through registers, so that a tile loads while the previous one is
// multiplied. cp.async.ca caches the source in L1 too.

// cpAsync starts copying BYTES (4, 8 or 16) from src to dst, of which only
// the first srcBytes are read; the rest of dst is zero filled (srcBytes 0:
// nothing is read, dst becomes zeros).
template <int BYTES>
__device__ __forceinline__ void cpAsync(void* dst, const void* src, int srcBytes) {
  static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
#ifdef SINCERE_EMU
  emu::cpAsync(dst, src, BYTES, srcBytes);
#else
  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(s), "l"(src), "n"(BYTES), "r"(srcBytes)
               : "memory");
#endif
}

// cpAsync16 copies 16 bytes, all of them read.
__device__ __forceinline__ void cpAsync16(float* dst, const float* src) {
#ifdef SINCERE_EMU
  emu::cpAsync(dst, src, 16, 16);
#else
  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src) : "memory");
#endif
}

// cpAsyncCommit closes this thread's group of copies started since the last.
__device__ __forceinline__ void cpAsyncCommit() {
#ifdef SINCERE_EMU
  emu::cpAsyncCommit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// cpAsyncWait waits until at most PENDING of this thread's committed groups
// are still in flight; a barrier then makes everyone's copies visible.
template <int PENDING>
__device__ __forceinline__ void cpAsyncWait() {
#ifdef SINCERE_EMU
  emu::cpAsyncWait(PENDING);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING) : "memory");
#endif
}

// cpAsyncWaitAll waits for all of this thread's copies.
__device__ __forceinline__ void cpAsyncWaitAll() { cpAsyncWait<0>(); }
#endif

}  // namespace sincere
