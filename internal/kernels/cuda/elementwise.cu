// Elementwise kernels and reductions of the training device.
//
// CPU twin: the CPUDevice methods of internal/kernels/cpu_device.go and
// norm.go (Fill, Copy, ReLU, ReLUBackward, Add, AddBias, SumRows,
// GlobalAvgPool, GlobalAvgPoolBackward, SoftmaxCrossEntropy, SGD,
// SumSquares), with the same semantics: parameter gradients (db) are added
// to, every other output is overwritten; float32, row-major, activations
// channels-last. Scalar results (a loss, a sum of squares) land in float64
// device memory, so that a training step needs no host round trip.
//
// Every kernel runs blocks of 256 threads (sincere::NT). The flat kernels
// (fill .. gap_backward, sgd) take any grid: they loop over their elements
// with a grid stride, 16 bytes at a time when every pointer they touch is
// 16-byte aligned (a run-time test: uniform over the launch), so the host
// takes grid = min(ceil(n / 1024), 4096) (each thread handles a float4 per
// pass; a grid of a few thousand blocks fills any GPU).
//
// Kernels and arguments (ll = long long, element counts; all pointers are
// device pointers; "y may be x" where stated, else no overlap):
//
//   fill_f32(float* y, ll n, float v)                        y = v
//   copy_f32(float* y, const float* x, ll n)                 y = x
//   relu_f32(const float* x, float* y, ll n)                 y = max(x, 0); y may be x
//   relu_backward_f32(const float* y, const float* dy,
//                     float* dx, ll n)                       dx = dy where y != 0; dx may be dy
//   add_f32(const float* a, const float* b, float* y, ll n)  y = a + b; y may be a or b
//   bias_add_f32(float* y, int rows, int cols,
//                const float* bias)                          y[i][j] += bias[j]
//   gap_forward_f32(const float* x, int n, int hw, int c,
//                   float* y)                                y[i][j] = mean_p x[i][p][j]
//        grid: ceil(n c / 256) (capped at 65535: it strides), one thread
//        per (image, channel), summing the hw pixels in order
//   gap_backward_f32(const float* dy, int n, int hw, int c,
//                    float* dx)                              dx[i][p][j] = dy[i][j] / hw
//   sgd_f32(float* w, const float* g, float* v, ll n, float lr,
//           float momentum, float decay, const double* guard,
//           int nguard)
//        v = momentum v + (g + decay w); w -= lr v, unless one of the
//        nguard float64 values at guard is NaN or infinite: then nothing
//        is written (the step's loss and squared gradient norm go there,
//        so that a bad step leaves the weights alone without a host sync)
//
// Column sums (the bias gradient), in two launches with a fixed order:
//   sum_rows_partial(const float* x, int rows, int cols, int chunkRows,
//                    double* part, float* db, int direct)
//        grid (ceil(cols / 32), chunks = ceil(rows / chunkRows));
//        chunkRows a multiple of 8. Block (bx, by) sums rows
//        [by chunkRows, (by+1) chunkRows) of columns [32 bx, 32 bx + 32):
//        thread (lane, r) = (t % 32, t / 32) sums rows r, r + 8, ... of
//        column 32 bx + lane in float, then the 8 row lanes are added in
//        order in float64 into part[by cols + column]. With direct != 0
//        (only when chunks == 1) it adds the sum to db[column] instead.
//   sum_rows_finish(const double* part, int chunks, int cols, float* db)
//        grid ceil(cols / 32): db[j] += sum over chunks of part, the
//        chunks taken by 8 lanes (lane q: chunks q, q + 8, ...) added in
//        order.
//   The host picks chunkRows from the shape alone (colReduceChunk below),
//   so the bits depend on the inputs only.
//
// Softmax cross entropy:
//   softmax_xent_f32(const float* logits, int rows, int classes,
//                    const int* labels, float* dlogits, double* rowLoss)
//        grid ceil(rows / 8): one warp per row; rowLoss[r] = lse - logit
//        of the label (float64), dlogits = (softmax - onehot) / rows. A
//        label outside [0, classes) gives a NaN loss row (the host checks
//        labels; this only keeps a bad one from reading out of bounds).
//   reduce_f64(const double* x, int n, double scale, double* out)
//        grid 1: *out = scale * sum x, added in a fixed order (thread t:
//        x[t], x[t + 256], ...; then a fixed tree). For the mean loss,
//        scale = 1 / rows.
//
// Sum of squares of a flat buffer:
//   sum_squares_partial(const float* x, ll n, double* part)
//        grid ceil(n / 8192): block b sums the squares of x[8192 b ..
//        8192 (b+1)) in float64 into part[b] (thread t: elements t, t +
//        256, ... of its chunk, then a fixed tree);
//   then reduce_f64(part, blocks, 1, out).
//
// colReduceChunk (host side, for sum_rows and the batch norm statistics):
//   colBlocks = ceil(cols / 32)
//   chunks    = max(1, min(ceil(rows / 64), ceil(1024 / colBlocks)))
//   chunkRows = ceil(ceil(rows / chunks) / 8) * 8;  chunks = ceil(rows / chunkRows)

#include "common.h"

namespace sincere {
constexpr int SQ_CHUNK = 8192;  // elements per block of sum_squares_partial
}  // namespace sincere


using sincere::forEach;
using sincere::ld4;
using sincere::st4;

extern "C" __global__ void __launch_bounds__(sincere::NT) fill_f32(float* __restrict__ y, long long n, float v) {
  forEach(
      n, sincere::aligned16(y), [&](long long i) { y[i] = v; }, [&](long long i) { st4(y, i, make_float4(v, v, v, v)); });
}
EMU_REGISTER(fill_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    copy_f32(float* __restrict__ y, const float* __restrict__ x, long long n) {
  forEach(
      n, sincere::aligned16(y) && sincere::aligned16(x), [&](long long i) { y[i] = x[i]; },
      [&](long long i) { st4(y, i, ld4(x, i)); });
}
EMU_REGISTER(copy_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT) relu_f32(const float* x, float* y, long long n) {
  using sincere::relu;
  forEach(
      n, sincere::aligned16(y) && sincere::aligned16(x), [&](long long i) { y[i] = relu(x[i]); },
      [&](long long i) {
        const float4 a = ld4(x, i);
        st4(y, i, make_float4(relu(a.x), relu(a.y), relu(a.z), relu(a.w)));
      });
}
EMU_REGISTER(relu_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    relu_backward_f32(const float* __restrict__ y, const float* dy, float* dx, long long n) {
  using sincere::reluMask;
  forEach(
      n, sincere::aligned16(y) && sincere::aligned16(dy) && sincere::aligned16(dx),
      [&](long long i) { dx[i] = reluMask(y[i], dy[i]); },
      [&](long long i) {
        const float4 a = ld4(y, i), g = ld4(dy, i);
        st4(dx, i, make_float4(reluMask(a.x, g.x), reluMask(a.y, g.y), reluMask(a.z, g.z), reluMask(a.w, g.w)));
      });
}
EMU_REGISTER(relu_backward_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    add_f32(const float* a, const float* b, float* y, long long n) {
  forEach(
      n, sincere::aligned16(a) && sincere::aligned16(b) && sincere::aligned16(y),
      [&](long long i) { y[i] = a[i] + b[i]; },
      [&](long long i) {
        const float4 u = ld4(a, i), v = ld4(b, i);
        st4(y, i, make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w));
      });
}
EMU_REGISTER(add_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    bias_add_f32(float* __restrict__ y, int rows, int cols, const float* __restrict__ bias) {
  // Quads stay within a row when cols is a multiple of 4.
  const bool vec = cols % 4 == 0 && sincere::aligned16(y) && sincere::aligned16(bias);
  forEach(
      (long long)rows * cols, vec, [&](long long i) { y[i] += bias[i % cols]; },
      [&](long long i) {
        const float4 b = ld4(bias, i % (cols / 4));
        float4 v = ld4(y, i);
        v.x += b.x;
        v.y += b.y;
        v.z += b.z;
        v.w += b.w;
        st4(y, i, v);
      });
}
EMU_REGISTER(bias_add_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    sum_rows_partial(const float* __restrict__ x, int rows, int cols, int chunkRows, double* __restrict__ part,
                     float* __restrict__ db, int direct) {
  const int col = blockIdx.x * sincere::CR_LANES + threadIdx.x % sincere::CR_LANES;
  const int r0 = blockIdx.y * chunkRows, r1 = min(rows, r0 + chunkRows);
  double s[1];
  sincere::colSums<1>(
      r0, r1, col, cols, [&](int r, int c, float(&a)[1]) { a[0] = x[(size_t)r * cols + c]; }, s);
  if (threadIdx.x < sincere::CR_LANES && col < cols) {
    if (direct) {
      db[col] += (float)s[0];
    } else {
      part[(size_t)blockIdx.y * cols + col] = s[0];
    }
  }
}
EMU_REGISTER(sum_rows_partial)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    sum_rows_finish(const double* __restrict__ part, int chunks, int cols, float* __restrict__ db) {
  const int col = blockIdx.x * sincere::CR_LANES + threadIdx.x % sincere::CR_LANES;
  double s[1];
  sincere::partSums<1>(part, chunks, col, cols, s);
  if (threadIdx.x < sincere::CR_LANES && col < cols) db[col] += (float)s[0];
}
EMU_REGISTER(sum_rows_finish)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    gap_forward_f32(const float* __restrict__ x, int n, int hw, int c, float* __restrict__ y) {
  const long long total = (long long)n * c;
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    const long long i = idx / c, j = idx % c;
    const float* p = x + i * hw * c + j;
    float s = 0.f;
    for (int q = 0; q < hw; q++) s += p[(size_t)q * c];
    y[idx] = s / (float)hw;
  }
}
EMU_REGISTER(gap_forward_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    gap_backward_f32(const float* __restrict__ dy, int n, int hw, int c, float* __restrict__ dx) {
  const float fhw = (float)hw;
  const bool vec = c % 4 == 0 && sincere::aligned16(dy) && sincere::aligned16(dx);
  const long long c4 = c / 4;
  forEach(
      (long long)n * hw * c, vec, [&](long long i) { dx[i] = dy[(i / ((long long)hw * c)) * c + i % c] / fhw; },
      [&](long long i) {
        // quad i is channels 4 (i % c4) .. of pixel i / c4 of image i / (hw c4)
        const float4 g = ld4(dy, (i / (hw * c4)) * c4 + i % c4);
        st4(dx, i, make_float4(g.x / fhw, g.y / fhw, g.z / fhw, g.w / fhw));
      });
}
EMU_REGISTER(gap_backward_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    softmax_xent_f32(const float* __restrict__ logits, int rows, int classes, const int* __restrict__ labels,
                     float* __restrict__ dlogits, double* __restrict__ rowLoss) {
  const int row = blockIdx.x * (sincere::NT / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;  // whole warps leave together; no barriers follow
  const float* l = logits + (size_t)row * classes;
  float m = -INFINITY;
  for (int j = lane; j < classes; j += 32) m = fmaxf(m, l[j]);
  m = sincere::warpMax(m);
  double s = 0;
  for (int j = lane; j < classes; j += 32) s += exp((double)l[j] - m);
  s = sincere::warpSum(s);
  const double lse = m + log(s);
  const int y = labels[row];
  const bool ok = y >= 0 && y < classes;
  for (int j = lane; j < classes; j += 32) {
    double p = exp((double)l[j] - lse);
    if (j == y) p -= 1;
    dlogits[(size_t)row * classes + j] = (float)(p / rows);
  }
  if (lane == 0) rowLoss[row] = ok ? lse - (double)l[y] : NAN;
}
EMU_REGISTER(softmax_xent_f32)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    reduce_f64(const double* __restrict__ x, int n, double scale, double* __restrict__ out) {
  const double s = sincere::fixedSum(x, n);
  if (threadIdx.x == 0) *out = s * scale;
}
EMU_REGISTER(reduce_f64)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    sum_squares_partial(const float* __restrict__ x, long long n, double* __restrict__ part) {
  const long long lo = (long long)blockIdx.x * sincere::SQ_CHUNK;
  const long long hi = min(n, lo + sincere::SQ_CHUNK);
  double s = 0;
  if (sincere::aligned16(x)) {
    // quads of the chunk (lo is a multiple of 4), then its tail
    const long long q0 = lo / 4, q1 = hi / 4;
    for (long long q = q0 + threadIdx.x; q < q1; q += sincere::NT) {
      const float4 v = ld4(x, q);
      s += (double)v.x * v.x + (double)v.y * v.y + (double)v.z * v.z + (double)v.w * v.w;
    }
    for (long long i = q1 * 4 + threadIdx.x; i < hi; i += sincere::NT) s += (double)x[i] * x[i];
  } else {
    for (long long i = lo + threadIdx.x; i < hi; i += sincere::NT) s += (double)x[i] * x[i];
  }
  s = sincere::blockSum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}
EMU_REGISTER(sum_squares_partial)

extern "C" __global__ void __launch_bounds__(sincere::NT)
    sgd_f32(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v, long long n, float lr,
            float momentum, float decay, const double* __restrict__ guard, int nguard) {
  for (int k = 0; k < nguard; k++)
    if (!isfinite(guard[k])) return;  // the same for every thread: nothing is written
  auto step = [&](float& wi, float gi, float& vi) {
    vi = momentum * vi + (gi + decay * wi);
    wi -= lr * vi;
  };
  forEach(
      n, sincere::aligned16(w) && sincere::aligned16(g) && sincere::aligned16(v),
      [&](long long i) { step(w[i], g[i], v[i]); },
      [&](long long i) {
        float4 a = ld4(w, i), b = ld4(v, i);
        const float4 c = ld4(g, i);
        step(a.x, c.x, b.x);
        step(a.y, c.y, b.y);
        step(a.z, c.z, b.z);
        step(a.w, c.w, b.w);
        st4(w, i, a);
        st4(v, i, b);
      });
}
EMU_REGISTER(sgd_f32)
