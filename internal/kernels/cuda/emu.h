// emu.h makes the CUDA C of the kernels (loss.cu, gemm.cu, conv.cu, norm.cu,
// elementwise.cu) a C++ program that runs on the CPU, so
// that the kernels' logic is tested where there is no GPU (go test -tags
// gpuemu). It is a small model of the CUDA execution model, not a fast one:
//
//   - blocks run one after the other; a block's threads are fibers
//     (ucontext) of one OS thread, switched only at barriers, so a run is
//     deterministic. A launch may ask for the reversed schedule (blocks
//     from the last to the first, fibers resumed from the last thread to
//     the first): a kernel whose result depends on the order of blocks, or
//     that reads shared memory another thread writes without a barrier
//     between, then gives other bits;
//   - __syncthreads waits for every thread of the block, shuffles and
//     __syncwarp for every thread of the warp; a barrier that cannot
//     complete (divergence) is reported as a deadlock;
//   - __shared__ variables are function statics: one instance per kernel,
//     shared by the running block's threads;
//   - WMMA fragments hold the whole tile in every lane; mma_sync rounds
//     nothing beyond what __float_to_tf32 did and accumulates in float, in
//     order of k (each lane of a warp reuses the first lane's product);
//     store_matrix_sync is done by lane 0 when it reaches it, so a warp
//     that reads what it stored needs __syncwarp in between, as on a GPU;
//   - cp.async copies land when their thread waits for their group, with
//     the zero fill of a partial copy (src-size below cp-size).
//
// Only what the kernels use is modelled.
#pragma once

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct alignas(16) float4 {
  float x, y, z, w;
};

inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

using std::max;
using std::min;

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

namespace emu {

enum State { kRunning, kAtBlockBarrier, kAtWarpBarrier, kDone };

// Copy is an asynchronous copy (cp.async) in flight: it lands when its
// thread waits for its group, not before, so that a kernel that reads the
// destination too early reads stale data here too.
struct Copy {
  void* dst;
  const void* src;
  size_t n, srcBytes;  // srcBytes <= n are read, the rest is zero filled
  int group;
};

struct Fiber {
  ucontext_t ctx;
  char* stack = nullptr;
  dim3 tid;
  int lane = 0, warp = 0;
  State state = kRunning;
  int mmaSeq = 0;  // products since the last barrier
  std::vector<Copy> copies;
  int committed = 0;  // groups committed
};

// MMAMemo is one warp's record of a product: inputs and result.
struct MMAMemo {
  std::vector<float> in, out;
};

struct Block {
  ucontext_t main;
  std::vector<Fiber> fibers;
  std::function<void()> body;
  std::vector<double> warpSlots;              // 32 per warp, for shuffles
  std::vector<std::vector<MMAMemo>> mmaMemo;  // per warp
  const char* error = nullptr;
};

inline Fiber* cur = nullptr;
inline bool reversed = false;  // the launch's schedule
inline Block* blk = nullptr;
inline dim3 blockIdx_, blockDim_, gridDim_;

constexpr size_t kStack = 256 << 10;

inline void yield(State s) {
  cur->state = s;
  swapcontext(&cur->ctx, &blk->main);
}

inline void entry() {
  blk->body();
  cur->state = kDone;
  // returning resumes uc_link, the scheduler
}

// runBlock runs the block's threads until all are done; it returns an
// error message or nullptr.
inline const char* runBlock(Block& b, int threads) {
  blk = &b;
  b.error = nullptr;
  if ((int)b.fibers.size() < threads) b.fibers.resize(threads);
  const int warps = (threads + 31) / 32;
  b.warpSlots.assign(warps * 32, 0);
  b.mmaMemo.assign(warps, {});
  for (int t = 0; t < threads; t++) {
    Fiber& f = b.fibers[t];
    if (f.stack == nullptr) f.stack = new char[kStack];
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = &b.main;
    makecontext(&f.ctx, entry, 0);
    f.tid.x = t % blockDim_.x;
    f.tid.y = (t / blockDim_.x) % blockDim_.y;
    f.tid.z = t / (blockDim_.x * blockDim_.y);
    f.lane = t % 32;
    f.warp = t / 32;
    f.state = kRunning;
    f.mmaSeq = 0;
    f.copies.clear();
    f.committed = 0;
  }
  for (;;) {
    for (int k = 0; k < threads; k++) {
      Fiber& f = b.fibers[reversed ? threads - 1 - k : k];
      if (f.state != kRunning) continue;
      cur = &f;
      swapcontext(&b.main, &f.ctx);
    }
    int done = 0, atBlock = 0;
    for (int t = 0; t < threads; t++) {
      done += b.fibers[t].state == kDone;
      atBlock += b.fibers[t].state == kAtBlockBarrier;
    }
    if (done == threads) return b.error;
    bool released = false;
    for (int w = 0; w < warps; w++) {
      const int lo = w * 32, hi = lo + 32 < threads ? lo + 32 : threads;
      bool all = true, any = false;
      for (int t = lo; t < hi; t++) {
        all = all && b.fibers[t].state == kAtWarpBarrier;
        any = any || b.fibers[t].state == kAtWarpBarrier;
      }
      if (!any) continue;
      if (!all) continue;
      for (int t = lo; t < hi; t++) {
        b.fibers[t].state = kRunning;
        b.fibers[t].mmaSeq = 0;
      }
      b.mmaMemo[w].clear();
      released = true;
    }
    if (released) continue;
    if (atBlock == threads) {
      for (int t = 0; t < threads; t++) {
        b.fibers[t].state = kRunning;
        b.fibers[t].mmaSeq = 0;
      }
      for (auto& m : b.mmaMemo) m.clear();
      continue;
    }
    return atBlock > 0 && atBlock + done == threads
               ? "__syncthreads reached by only some threads of a block (others exited)"
               : "deadlock: threads wait at different barriers (divergent __syncthreads or shuffle)";
  }
}

// cpAsync starts a copy of n bytes to dst of which the first srcBytes come
// from src and the rest are zeros (cp.async with src-size).
inline void cpAsync(void* dst, const void* src, size_t n, size_t srcBytes) {
  if (srcBytes > n) srcBytes = n;  // undefined on a GPU; never asked for
  cur->copies.push_back(Copy{dst, src, n, srcBytes, cur->committed});
}

inline void cpAsyncCommit() { cur->committed++; }

// cpAsyncWait lands the copies of all but the newest `pending` committed groups.
inline void cpAsyncWait(int pending) {
  std::vector<Copy> rest;
  for (const Copy& c : cur->copies) {
    if (c.group < cur->committed - pending) {
      memcpy(c.dst, c.src, c.srcBytes);
      memset((char*)c.dst + c.srcBytes, 0, c.n - c.srcBytes);
    } else {
      rest.push_back(c);
    }
  }
  cur->copies.swap(rest);
}

// Kernel registry: name -> function taking the launch's argument pointers.
using Thunk = std::function<void(void**)>;

inline std::map<std::string, Thunk>& registry() {
  static std::map<std::string, Thunk> r;
  return r;
}

template <class... A, size_t... I>
void callWith(void (*f)(A...), void** args, std::index_sequence<I...>) {
  f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

template <class... A>
struct Registrar {
  Registrar(const char* name, void (*f)(A...)) {
    registry()[name] = [f](void** args) { callWith(f, args, std::index_sequence_for<A...>{}); };
  }
};

}  // namespace emu

#define threadIdx (emu::cur->tid)
#define blockIdx (emu::blockIdx_)
#define blockDim (emu::blockDim_)
#define gridDim (emu::gridDim_)

#define EMU_REGISTER(NAME) static emu::Registrar emu_registrar_##NAME(#NAME, NAME);

inline void __syncthreads() { emu::yield(emu::kAtBlockBarrier); }

// __syncwarp waits for every thread of the warp (the whole warp: the mask
// is not modelled).
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)mask;
  emu::yield(emu::kAtWarpBarrier);
}

inline unsigned __float_as_uint(float v) {
  unsigned u;
  memcpy(&u, &v, 4);
  return u;
}

inline float __uint_as_float(unsigned u) {
  float v;
  memcpy(&v, &u, 4);
  return v;
}

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int laneMask) {
  (void)mask;
  emu::Block& b = *emu::blk;
  const int w = emu::cur->warp, lane = emu::cur->lane;
  static_assert(sizeof(T) <= sizeof(double), "shuffle of a wide type");
  memcpy(&b.warpSlots[w * 32 + lane], &v, sizeof(T));
  emu::yield(emu::kAtWarpBarrier);  // everyone has written
  T r;
  memcpy(&r, &b.warpSlots[w * 32 + (lane ^ laneMask)], sizeof(T));
  emu::yield(emu::kAtWarpBarrier);  // everyone has read
  return r;
}

// Atomics: the fibers of one OS thread never interleave inside a call.
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
  const unsigned long long old = *p;
  if (v < old) *p = v;
  return old;
}

using std::isfinite;

// ---------------------------------------------------------------------------
// WMMA, TF32 shapes only.
namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment;

// A: M x K, stored logically row-major in x.
template <int M, int N, int K, class Layout>
struct fragment<matrix_a, M, N, K, precision::tf32, Layout> {
  static constexpr int num_elements = M * K;
  float x[M * K];
};

// B: K x N, stored logically row-major in x.
template <int M, int N, int K, class Layout>
struct fragment<matrix_b, M, N, K, precision::tf32, Layout> {
  static constexpr int num_elements = K * N;
  float x[K * N];
};

// C: M x N, row-major in x.
template <int M, int N, int K>
struct fragment<accumulator, M, N, K, float, void> {
  static constexpr int num_elements = M * N;
  float x[M * N];
};

// __float_to_tf32 rounds to the nearest TF32 value (10 mantissa bits),
// ties away from zero, as cvt.rna.tf32.f32.
inline float __float_to_tf32(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) {
    u += 0x1000u;
    u &= 0xffffe000u;
  }
  memcpy(&v, &u, 4);
  return v;
}

template <int M, int N, int K>
inline void fill_fragment(fragment<accumulator, M, N, K, float>& f, float v) {
  for (int i = 0; i < M * N; i++) f.x[i] = v;
}

template <int M, int N, int K, class L>
inline void load_matrix_sync(fragment<matrix_a, M, N, K, precision::tf32, L>& f, const float* p, unsigned ldm) {
  for (int m = 0; m < M; m++)
    for (int k = 0; k < K; k++)
      f.x[m * K + k] = std::is_same<L, row_major>::value ? p[m * ldm + k] : p[k * ldm + m];
}

template <int M, int N, int K, class L>
inline void load_matrix_sync(fragment<matrix_b, M, N, K, precision::tf32, L>& f, const float* p, unsigned ldm) {
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++)
      f.x[k * N + n] = std::is_same<L, row_major>::value ? p[k * ldm + n] : p[n * ldm + k];
}

template <int M, int N, int K>
inline void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t l) {
  // Every lane holds the whole tile; the first writes it.
  if (emu::cur->lane != 0) return;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) (l == mem_row_major ? p[m * ldm + n] : p[n * ldm + m]) = f.x[m * N + n];
}

template <int M, int N, int K, class LA, class LB>
inline void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, precision::tf32, LA>& a,
                     const fragment<matrix_b, M, N, K, precision::tf32, LB>& b,
                     const fragment<accumulator, M, N, K, float>& c) {
  // The lanes of a warp compute the same product: the first to reach its
  // k-th product since the last barrier records it, the others copy it when
  // their inputs match.
  std::vector<float> in;
  in.reserve(M * K + K * N + M * N);
  in.insert(in.end(), a.x, a.x + M * K);
  in.insert(in.end(), b.x, b.x + K * N);
  in.insert(in.end(), c.x, c.x + M * N);
  auto& memo = emu::blk->mmaMemo[emu::cur->warp];
  const int seq = emu::cur->mmaSeq++;
  if (seq < (int)memo.size() && memo[seq].in == in) {
    memcpy(d.x, memo[seq].out.data(), sizeof(float) * M * N);
    return;
  }
  float out[M * N];
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float s = c.x[m * N + n];
      for (int k = 0; k < K; k++) s += a.x[m * K + k] * b.x[k * N + n];
      out[m * N + n] = s;
    }
  memcpy(d.x, out, sizeof out);
  if (seq == (int)memo.size()) memo.push_back(emu::MMAMemo{std::move(in), std::vector<float>(out, out + M * N)});
}

}  // namespace wmma
}  // namespace nvcuda
