// Batch normalisation over channels-last activations (rows = N H W rows of
// c channels), training and evaluation, with the fused ReLU and residual
// add, and its backward pass.
//
// CPU twin: CPUDevice.BatchNormTrain, BatchNormEval and BatchNormBackward
// (internal/kernels/norm.go, normops.go), with the same semantics: batch
// mean and biased variance per channel, computed as sums of x - x[0] (the
// first row's value shifts each channel so that the one-pass variance
// stays exact enough); mean and 1/sqrt(var + eps) saved for the backward
// pass; running statistics moved as run = (1 - momentum) run + momentum
// batch with the unbiased variance; y = (x - mean) scale + beta with scale
// = gamma invStd, optionally + r (residual) and max(., 0) (ReLU). (The CPU
// twin computes x scale + (beta - mean scale), which loses digits to
// cancellation when |mean| is many standard deviations: the same function,
// evaluated more accurately here.) Backward: dgamma += sum g xhat, dbeta +=
// sum g, dx = gamma invStd (g - mean(g) - xhat mean(g xhat)), where g is dy,
// or dy where y != 0 with the fused ReLU (y given); with the residual, the
// residual's gradient dr = g comes out of the same pass.
//
// Every launch has blocks of 256 threads. The statistics are sums over
// rows split into chunks of chunkRows rows (a multiple of 8, chosen by the
// host from the shape alone: colReduceChunk in elementwise.cu), each chunk
// summed by one block, the chunks then added in a fixed order: the bits
// depend on the inputs only. A column-reduction block (bx, by) covers
// channels [32 bx, 32 bx + 32) and the rows of chunk by; within it thread
// t takes channel t % 32 and rows t / 32, t / 32 + 8, ... (a warp reads 32
// consecutive channels of a row: 128 contiguous bytes).
//
// Training forward (three launches):
//   bn_stats_partial(const float* x, int rows, int c, int chunkRows,
//                    double* part)
//        grid (ceil(c / 32), chunks); part: chunks x 2 x c float64 (sum of
//        x - x[0], sum of its square)
//   bn_stats_finish(const double* part, int chunks, int rows, int c,
//                   const float* x, const float* gamma, const float* beta,
//                   float eps, float momentum, float* runMean,
//                   float* runVar, float* mean, float* invStd,
//                   float* affine)
//        grid ceil(c / 32); writes mean, invStd, the running statistics,
//        and affine (3 c floats: scale = gamma invStd, centre = mean,
//        offset = beta)
//   bn_apply(const float* x, int rows, int c, const float* affine,
//            const float* r, int relu, float* y)
//        grid min(ceil(rows c / 1024), 4096) (grid stride);
//        y = (x - centre) scale + offset (+ r when r is not null) (then
//        max(., 0) when relu != 0); y may be x or r
// Evaluation (two launches):
//   bn_eval_prepare(const float* gamma, const float* beta,
//                   const float* runMean, const float* runVar, int c,
//                   float eps, float* affine)
//        grid ceil(c / 256); scale = gamma / sqrt(runVar + eps), centre =
//        runMean, offset = beta
//   then bn_apply as above.
// Backward (three launches):
//   bn_backward_partial(const float* x, const float* y, const float* dy,
//                       int rows, int c, int chunkRows, const float* mean,
//                       const float* invStd, double* part)
//        grid (ceil(c / 32), chunks); y null without the fused ReLU;
//        part: chunks x 2 x c float64 (sum g, sum g xhat)
//   bn_backward_finish(const double* part, int chunks, int rows, int c,
//                      const float* gamma, const float* invStd,
//                      float* dgamma, float* dbeta, float* coef)
//        grid ceil(c / 32); dgamma += sum g xhat, dbeta += sum g; coef
//        (3 c floats): gamma invStd, mean g, mean g xhat
//   bn_backward_apply(const float* x, const float* y, const float* dy,
//                     int rows, int c, const float* mean,
//                     const float* invStd, const float* coef, float* dx,
//                     float* dr)
//        grid as bn_apply; dx = coef0 (g - coef1 - xhat coef2); dr = g
//        when dr is not null (the fused residual's gradient); dx may be dy
//
// Scratch the host provides: part (2 c chunks float64), affine or coef
// (3 c floats).

#include "common.h"

namespace sincere {

// chunkOf returns the rows [r0, r1) of the block's chunk.
__device__ __forceinline__ void chunkOf(int rows, int chunkRows, int& r0, int& r1) {
  r0 = blockIdx.y * chunkRows;
  r1 = min(rows, r0 + chunkRows);
}

// channelOf is the channel of this thread in a column-reduction block.
__device__ __forceinline__ int channelOf() { return blockIdx.x * CR_LANES + threadIdx.x % CR_LANES; }

// perChannel runs one(i, j) over the rows x c elements of a channels-last
// tensor (j = i % c), or four(q, j) over the quads q = [4q, 4q + 4) (j =
// 4q % c, the quad's first channel) when c is a multiple of 4 and vec
// holds, over the whole grid.
template <class One, class Four>
__device__ __forceinline__ void perChannel(int rows, int c, bool vec, One one, Four four) {
  forEach(
      (long long)rows * c, vec && c % 4 == 0, [&](long long i) { one(i, (int)(i % c)); },
      [&](long long q) { four(q, (int)((q * 4) % c)); });
}

// float4 arithmetic of the quad paths.
__device__ __forceinline__ float4 operator+(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
__device__ __forceinline__ float4 operator-(float4 a, float4 b) {
  return make_float4(a.x - b.x, a.y - b.y, a.z - b.z, a.w - b.w);
}
__device__ __forceinline__ float4 operator*(float4 a, float4 b) {
  return make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w);
}
__device__ __forceinline__ float4 relu4(float4 a) { return make_float4(relu(a.x), relu(a.y), relu(a.z), relu(a.w)); }
__device__ __forceinline__ float4 mask4(float4 y, float4 g) {
  return make_float4(reluMask(y.x, g.x), reluMask(y.y, g.y), reluMask(y.z, g.z), reluMask(y.w, g.w));
}

}  // namespace sincere

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bn_stats_partial(const float* __restrict__ x, int rows, int c, int chunkRows, double* __restrict__ part) {
  const int j = sincere::channelOf();
  int r0, r1;
  sincere::chunkOf(rows, chunkRows, r0, r1);
  const float shift = j < c ? x[j] : 0.f;
  double s[2];
  sincere::colSums<2>(
      r0, r1, j, c,
      [&](int r, int col, float(&a)[2]) {
        const float d = x[(size_t)r * c + col] - shift;
        a[0] = d;
        a[1] = d * d;
      },
      s);
  if (threadIdx.x < sincere::CR_LANES && j < c) {
    part[((size_t)blockIdx.y * 2 + 0) * c + j] = s[0];
    part[((size_t)blockIdx.y * 2 + 1) * c + j] = s[1];
  }
}
EMU_REGISTER(bn_stats_partial)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bn_stats_finish(const double* __restrict__ part, int chunks, int rows, int c, const float* __restrict__ x,
                    const float* __restrict__ gamma, const float* __restrict__ beta, float eps, float momentum,
                    float* __restrict__ runMean, float* __restrict__ runVar, float* __restrict__ mean,
                    float* __restrict__ invStd, float* __restrict__ affine) {
  const int j = sincere::channelOf();
  double s[2];
  sincere::partSums<2>(part, chunks, j, c, s);
  if (threadIdx.x >= sincere::CR_LANES || j >= c) return;
  const double n = rows, m1 = s[0] / n;
  const double var = fmax(s[1] / n - m1 * m1, 0.0);
  const double mu = (double)x[j] + m1;
  const double is = 1.0 / sqrt(var + (double)eps);
  const double unbiased = rows > 1 ? var * n / (n - 1) : var;
  mean[j] = (float)mu;
  invStd[j] = (float)is;
  runMean[j] = (1.f - momentum) * runMean[j] + momentum * (float)mu;
  runVar[j] = (1.f - momentum) * runVar[j] + momentum * (float)unbiased;
  affine[j] = (float)is * gamma[j];
  affine[c + j] = (float)mu;
  affine[2 * c + j] = beta[j];
}
EMU_REGISTER(bn_stats_finish)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bn_eval_prepare(const float* __restrict__ gamma, const float* __restrict__ beta,
                    const float* __restrict__ runMean, const float* __restrict__ runVar, int c, float eps,
                    float* __restrict__ affine) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= c) return;
  affine[j] = gamma[j] / (float)sqrt((double)runVar[j] + (double)eps);
  affine[c + j] = runMean[j];
  affine[2 * c + j] = beta[j];
}
EMU_REGISTER(bn_eval_prepare)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bn_apply(const float* x, int rows, int c, const float* __restrict__ affine, const float* r, int relu, float* y) {
  using namespace sincere;
  const float *scale = affine, *centre = affine + c, *offset = affine + 2 * c;
  const bool vec = aligned16(x) && aligned16(y) && aligned16(affine) && (r == nullptr || aligned16(r));
  perChannel(
      rows, c, vec,
      [&](long long i, int j) {
        float v = (x[i] - centre[j]) * scale[j] + offset[j];
        if (r != nullptr) v += r[i];
        y[i] = relu ? sincere::relu(v) : v;
      },
      [&](long long q, int j) {
        const int jq = j / 4;
        float4 v = (ld4(x, q) - ld4(centre, jq)) * ld4(scale, jq) + ld4(offset, jq);
        if (r != nullptr) v = v + ld4(r, q);
        st4(y, q, relu ? relu4(v) : v);
      });
}
EMU_REGISTER(bn_apply)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bn_backward_partial(const float* __restrict__ x, const float* __restrict__ y, const float* __restrict__ dy,
                        int rows, int c, int chunkRows, const float* __restrict__ mean,
                        const float* __restrict__ invStd, double* __restrict__ part) {
  const int j = sincere::channelOf();
  int r0, r1;
  sincere::chunkOf(rows, chunkRows, r0, r1);
  const float mu = j < c ? mean[j] : 0.f, is = j < c ? invStd[j] : 0.f;
  double s[2];
  sincere::colSums<2>(
      r0, r1, j, c,
      [&](int r, int col, float(&a)[2]) {
        const size_t i = (size_t)r * c + col;
        float g = dy[i];
        if (y != nullptr) g = sincere::reluMask(y[i], g);
        a[0] = g;
        a[1] = g * ((x[i] - mu) * is);
      },
      s);
  if (threadIdx.x < sincere::CR_LANES && j < c) {
    part[((size_t)blockIdx.y * 2 + 0) * c + j] = s[0];
    part[((size_t)blockIdx.y * 2 + 1) * c + j] = s[1];
  }
}
EMU_REGISTER(bn_backward_partial)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bn_backward_finish(const double* __restrict__ part, int chunks, int rows, int c, const float* __restrict__ gamma,
                       const float* __restrict__ invStd, float* __restrict__ dgamma, float* __restrict__ dbeta,
                       float* __restrict__ coef) {
  const int j = sincere::channelOf();
  double s[2];
  sincere::partSums<2>(part, chunks, j, c, s);
  if (threadIdx.x >= sincere::CR_LANES || j >= c) return;
  dbeta[j] += (float)s[0];
  dgamma[j] += (float)s[1];
  coef[j] = gamma[j] * invStd[j];
  coef[c + j] = (float)(s[0] / rows);
  coef[2 * c + j] = (float)(s[1] / rows);
}
EMU_REGISTER(bn_backward_finish)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bn_backward_apply(const float* __restrict__ x, const float* __restrict__ y, const float* dy, int rows, int c,
                      const float* __restrict__ mean, const float* __restrict__ invStd,
                      const float* __restrict__ coef, float* dx, float* __restrict__ dr) {
  using namespace sincere;
  const float *k = coef, *ka = coef + c, *kb = coef + 2 * c;
  const bool vec = aligned16(x) && aligned16(dy) && aligned16(dx) && aligned16(mean) && aligned16(invStd) &&
                   aligned16(coef) && (y == nullptr || aligned16(y)) && (dr == nullptr || aligned16(dr));
  perChannel(
      rows, c, vec,
      [&](long long i, int j) {
        float g = dy[i];
        if (y != nullptr) g = reluMask(y[i], g);
        const float xh = (x[i] - mean[j]) * invStd[j];
        dx[i] = k[j] * (g - ka[j] - xh * kb[j]);
        if (dr != nullptr) dr[i] = g;
      },
      [&](long long q, int j) {
        const int jq = j / 4;
        float4 g = ld4(dy, q);
        if (y != nullptr) g = mask4(ld4(y, q), g);
        const float4 xh = (ld4(x, q) - ld4(mean, jq)) * ld4(invStd, jq);
        st4(dx, q, ld4(k, jq) * (g - ld4(ka, jq) - xh * ld4(kb, jq)));
        if (dr != nullptr) st4(dr, q, g);
      });
}
EMU_REGISTER(bn_backward_apply)
