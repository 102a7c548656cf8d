// General matrix product: C = alpha op(A) op(B) + beta C, float32,
// row-major, any m, n, k, transposes and leading dimensions.
//
// CPU twin: CPUDevice.Gemm (internal/kernels/cpu_device.go, gemm.go,
// Gemm.Sgemm), with the same semantics: op(A) is m x k (A stored m x k with
// leading dimension lda, or k x m when transA), op(B) is k x n (B stored
// k x n with ldb, or n x k when transB), C is m x n with ldc; beta = 0
// overwrites C without reading it (NaN there does not spread); k = 0 gives
// beta C. Each value of C is one block's sum over k in a fixed order: no
// split of k, no atomics.
//
// Kernels: gemm_<precision>_<ta><tb>_<vector>, where
//   precision  fp32 (FMAs; every GPU, both PTX files) or tf32 (tensor
//              cores: operands rounded to TF32, float accumulation;
//              compute capability 8.0+, only in gemm_sm80.ptx);
//   ta, tb     n (as stored) or t (transposed): nn, nt, tn, tt;
//   vector     v4: 16-byte loads, when a and b are 16-byte aligned and lda
//              and ldb are multiples of 4; s1: 4-byte loads, any layout.
// Arguments (one 8-byte slot each):
//   (int m, int n, int k, float alpha, const float* a, int lda,
//    const float* b, int ldb, float beta, float* c, int ldc)
// Launch: grid (ceil(n / 128), ceil(m / 128)), block 256; shared memory
// static: 40 KiB (tf32) or 17 KiB (fp32). See igemm.h for the tiles.
//
// Uses in training: the Linear layers' forward y = x W^T (nt), their weight
// gradient dW += dy^T x (tn, beta 1) and input gradient dx = dy W (nn);
// the kNN similarities of the probe, queries x bank^T (nt).

#include "igemm.h"

namespace sincere {
namespace gemmk {

// Out writes alpha v + beta C inside the m x n matrix.
struct Out {
  float* c;
  int ldc, m, n;
  float alpha, beta;
  __device__ __forceinline__ void operator()(int i, int j, float v) const {
    if (i >= m || j >= n) return;
    float* p = c + (size_t)i * ldc + j;
    *p = beta == 0.f ? alpha * v : alpha * v + beta * *p;
  }
};

template <int P, bool TA, bool TB, int VW>
__device__ __forceinline__ void gemm(int m, int n, int k, float alpha, const float* __restrict__ a, int lda,
                                     const float* __restrict__ b, int ldb, float beta, float* c, int ldc) {
  using SrcA = ig::Matrix<!TA, VW>;  // op(A)[i][p]: a[i lda + p], or a[p lda + i] when transposed
  using SrcB = ig::Matrix<TB, VW>;   // op(B)[p][j]: b[p ldb + j], or b[j ldb + p] when transposed
  using Blk = ig::Block<P, 128, 128, !TA, TB, VW, VW, SrcA, SrcB>;
  __shared__ __align__(128) float sm[Blk::SMEM];
  const SrcA sa{a, lda, m, k};
  const SrcB sb{b, ldb, n, k};
  Out out{c, ldc, m, n, alpha, beta};
  Blk::run(sm, sa, sb, blockIdx.y * 128, blockIdx.x * 128, 0, k, out);
}

}  // namespace gemmk
}  // namespace sincere

#define SINCERE_GEMM(NAME, P, TA, TB, VW)                                                                        \
  extern "C" __global__ void __launch_bounds__(sincere::NT, 2)                                                   \
      NAME(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,       \
           float* c, int ldc) {                                                                                  \
    sincere::gemmk::gemm<P, TA, TB, VW>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);                          \
  }                                                                                                              \
  EMU_REGISTER(NAME)

// SINCERE_GEMMS defines one precision's eight kernels.
#define SINCERE_GEMMS(PREC, P)                            \
  SINCERE_GEMM(gemm_##PREC##_nn_v4, P, false, false, 4) \
  SINCERE_GEMM(gemm_##PREC##_nt_v4, P, false, true, 4)  \
  SINCERE_GEMM(gemm_##PREC##_tn_v4, P, true, false, 4)  \
  SINCERE_GEMM(gemm_##PREC##_tt_v4, P, true, true, 4)   \
  SINCERE_GEMM(gemm_##PREC##_nn_s1, P, false, false, 1) \
  SINCERE_GEMM(gemm_##PREC##_nt_s1, P, false, true, 1)  \
  SINCERE_GEMM(gemm_##PREC##_tn_s1, P, true, false, 1)  \
  SINCERE_GEMM(gemm_##PREC##_tt_s1, P, true, true, 1)

SINCERE_GEMMS(fp32, sincere::ig::FP32)
#if SINCERE_TC
SINCERE_GEMMS(tf32, sincere::ig::TF32)
#endif
