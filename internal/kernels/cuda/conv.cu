// 2-D convolution as implicit GEMM: the forward pass, the input gradient
// and the filter gradient, FP32 and TF32, on the engine of igemm.h. No patch
// matrix is ever written: the operand sources below compute, for each
// 4-channel (or 1-channel) vector of a tile, where it lies in the tensor
// and whether it falls in the zero padding.
//
// CPU twin: CPUDevice.Conv2D and Conv2DBackward (internal/kernels/conv.go),
// with the same semantics: x is N x H x W x C (NHWC), w is R x S x C x K
// (filter taps, then input channels, then output channels), y and dy are
// N x P x Q x K with P = (H + 2 pad - R) / stride + 1 (Q likewise);
// the forward pass and the input gradient overwrite y and dx, the filter
// gradient is ADDED to dw. Any R, S, stride >= 1, pad >= 0 (the encoders use
// 3x3 stride 1 and 2 with pad 1, and 1x1 stride 1 and 2 with pad 0).
//
// The three products (M x N outputs, reduction of length Kr):
//   fprop  y (NPQ x K) = patches(x) (NPQ x RSC) . w (RSC x K)
//   dgrad  dx (NHW x C) = dy gathered (NHW x RSK) . w^T (RSK x C), run per
//          phase: with stride 2 an input pixel (h, w) is reached only by the
//          taps r = h + pad (mod 2), s likewise, so grid.z = stride^2
//          phases (h mod stride, w mod stride) each multiply only their own
//          taps (a 3x3 stride-2 filter: 1, 2, 2 or 4 taps instead of 9; a
//          1x1 stride-2 filter: 1 tap for one phase and none, hence zeros,
//          for the three others) instead of a 4x larger product of zeros;
//   wgrad  dw (RSC x K) += patches(x)^T (RSC x NPQ) . dy (NPQ x K): the
//          reduction over every output pixel is long (up to N P Q = 1M)
//          and the output small, so it is split: block z of the grid sums
//          pixels [z kChunk, (z + 1) kChunk) into its own slice of a
//          workspace, and conv_wgrad_reduce adds the slices to dw in the
//          order z = 0, 1, ...: the bits depend on kChunk (chosen from the
//          shape) but not on the schedule. With a single slice the block
//          adds its tile to dw directly.
//
// Kernels: conv_<product>_<precision>_<tile>_<vector> with
//   product    fprop, dgrad, wgrad;
//   precision  fp32 (both PTX files) or tf32 (conv_sm80.ptx only);
//   tile       128x128 or 128x64 (M x N of a block's tile; take 128x64 when
//              the N of the product (K, C, K) is at most 64);
//   vector     v4 (16-byte loads: C and K multiples of 4, pointers 16-byte
//              aligned) or s1 (any C, K: the stems' C = 1 or 3).
// Arguments (8-byte slots), geometry g = int N, C, H, W, K, R, S, stride, pad
// (the order of kernels.ConvGeom):
//   conv_fprop_*(const float* x, const float* w, float* y, g)
//       grid (ceil(K / BN), ceil(N P Q / 128), 1)
//   conv_dgrad_*(const float* dy, const float* w, float* dx, g)
//       grid (ceil(C / BN), ceil(N ceil(H / stride) ceil(W / stride) / 128),
//             stride^2)
//   conv_wgrad_*(const float* x, const float* dy, float* out, g,
//                int kChunk, int accumulate)
//       grid (ceil(K / BN), ceil(R S C / 128), splits = ceil(N P Q / kChunk));
//       kChunk a multiple of 16. accumulate != 0 (only with splits = 1):
//       out is dw and the tile is added to it; else out is a workspace of
//       splits x R S C x K floats, slice z overwritten.
//   conv_wgrad_reduce(const float* ws, int splits, long long count,
//                     float* dw)
//       grid min(ceil(count / 256), 4096), block 256:
//       dw[i] += ws[i] + ws[count + i] + ... (slices in order, in float)
// The host's choice of kChunk (shape only): with tiles = ceil(RSC / 128)
// ceil(K / BN) and Kr = N P Q,
//   splits = clamp(ceil(512 / tiles), 1, ceil(Kr / 512)),
//   kChunk = ceil(ceil(Kr / splits) / 16) * 16,  splits = ceil(Kr / kChunk)
// (at least ~512 blocks when the reduction is long enough, and at least 512
// pixels per slice).
// Shared memory and registers: as gemm.cu (igemm.h).

#include "igemm.h"

namespace sincere {
namespace conv {

using ig::Vec;

// Geom is a convolution's shape with its output size.
struct Geom {
  int N, C, H, W, K, R, S, str, pad, P, Q;
  __device__ __forceinline__ Geom(int n, int c, int h, int w, int k, int r, int s, int stride, int p)
      : N(n), C(c), H(h), W(w), K(k), R(r), S(s), str(stride), pad(p) {
    P = (H + 2 * pad - R) / str + 1;
    Q = (W + 2 * pad - S) / str + 1;
  }
};

// FpropA is the patch matrix of x: element (output pixel m, tap t) with
// t = (r S + s) C + c. Vectors run along c.
template <int VW>
struct FpropA {
  const float* x;
  Geom g;
  int M, Kt;  // N P Q, R S C
  struct MN {
    long long img;  // offset of the pixel's image
    int ih0, iw0;   // top-left of its window
    bool ok;
  };
  __device__ __forceinline__ MN mn(int m) const {
    const int pq = g.P * g.Q, n = m / pq, rest = m - n * pq, p = rest / g.Q, q = rest - p * g.Q;
    return MN{(long long)n * g.H * g.W * g.C, p * g.str - g.pad, q * g.str - g.pad, m < M};
  }
  __device__ __forceinline__ Vec at(const MN& a, int t) const {
    if (!a.ok || t >= Kt) return Vec{x, 0};
    const int rs = t / g.C, c = t - rs * g.C, r = rs / g.S, s = rs - r * g.S;
    const int ih = a.ih0 + r, iw = a.iw0 + s;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return Vec{x, 0};
    return Vec{x + a.img + ((long long)ih * g.W + iw) * g.C + c, VW};
  }
};

// Phase is the part of the input gradient one grid.z computes: input pixels
// (h, w) = (hh stride + ph, ww stride + pw), hh < Hp, ww < Wp, and the taps
// r = r0 + stride i (i < Rv), s = s0 + stride j (j < Sv) that reach them,
// from output pixel (hh + dh - i, ww + dw - j).
struct Phase {
  int ph, pw, r0, s0, Rv, Sv, dh, dw, Hp, Wp;
  __device__ __forceinline__ Phase(const Geom& g, int z) {
    ph = z / g.str;
    pw = z % g.str;
    r0 = (ph + g.pad) % g.str;
    s0 = (pw + g.pad) % g.str;
    Rv = r0 < g.R ? (g.R - r0 + g.str - 1) / g.str : 0;
    Sv = s0 < g.S ? (g.S - s0 + g.str - 1) / g.str : 0;
    dh = (ph + g.pad - r0) / g.str;
    dw = (pw + g.pad - s0) / g.str;
    Hp = ph < g.H ? (g.H - ph + g.str - 1) / g.str : 0;
    Wp = pw < g.W ? (g.W - pw + g.str - 1) / g.str : 0;
  }
};

// DgradA is dy gathered for a phase: element (phase pixel m, t) with t =
// (i Sv + j) K + k. Vectors run along k.
template <int VW>
struct DgradA {
  const float* dy;
  Geom g;
  Phase f;
  int M, Kt;  // N Hp Wp, Rv Sv K
  struct MN {
    long long img;  // offset of the pixel's image in dy
    int p0, q0;     // output pixel of tap (0, 0)
    bool ok;
  };
  __device__ __forceinline__ MN mn(int m) const {
    const int hw = f.Hp * f.Wp, n = m / max(hw, 1), rest = m - n * hw, hh = rest / max(f.Wp, 1),
              ww = rest - hh * f.Wp;
    return MN{(long long)n * g.P * g.Q * g.K, hh + f.dh, ww + f.dw, m < M};
  }
  __device__ __forceinline__ Vec at(const MN& a, int t) const {
    if (!a.ok || t >= Kt) return Vec{dy, 0};
    const int ij = t / g.K, k = t - ij * g.K, i = ij / f.Sv, j = ij - i * f.Sv;
    const int p = a.p0 - i, q = a.q0 - j;
    if (p < 0 || p >= g.P || q < 0 || q >= g.Q) return Vec{dy, 0};
    return Vec{dy + a.img + ((long long)p * g.Q + q) * g.K + k, VW};
  }
};

// DgradB is w^T for a phase: element (input channel c, t) = w[r][s][c][k],
// t = (i Sv + j) K + k. Vectors run along k.
template <int VW>
struct DgradB {
  const float* w;
  Geom g;
  Phase f;
  int Kt;
  struct MN {
    int c;
  };
  __device__ __forceinline__ MN mn(int c) const { return MN{c}; }
  __device__ __forceinline__ Vec at(const MN& a, int t) const {
    if (a.c >= g.C || t >= Kt) return Vec{w, 0};
    const int ij = t / g.K, k = t - ij * g.K, i = ij / f.Sv, j = ij - i * f.Sv;
    const int r = f.r0 + g.str * i, s = f.s0 + g.str * j;
    return Vec{w + (((long long)r * g.S + s) * g.C + a.c) * g.K + k, VW};
  }
};

// WgradA is the transposed patch matrix: element (tap t, output pixel m),
// t = (r S + s) C + c. Vectors run along c (the taps).
template <int VW>
struct WgradA {
  const float* x;
  Geom g;
  int Kend;  // the end of this block's pixels
  struct MN {
    int r, s, c;
    bool ok;
  };
  __device__ __forceinline__ MN mn(int t) const {
    const int rs = t / g.C, c = t - rs * g.C, r = rs / g.S, s = rs - r * g.S;
    return MN{r, s, c, t < g.R * g.S * g.C};
  }
  __device__ __forceinline__ Vec at(const MN& a, int m) const {
    if (!a.ok || m >= Kend) return Vec{x, 0};
    const int pq = g.P * g.Q, n = m / pq, rest = m - n * pq, p = rest / g.Q, q = rest - p * g.Q;
    const int ih = p * g.str - g.pad + a.r, iw = q * g.str - g.pad + a.s;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return Vec{x, 0};
    return Vec{x + (((long long)n * g.H + ih) * g.W + iw) * g.C + a.c, VW};
  }
};

// Store writes v at base[m ld + n] inside M x N (fprop: y; wgrad: a slice).
struct Store {
  float* base;
  int ld, M, N;
  bool add;
  __device__ __forceinline__ void operator()(int m, int n, float v) const {
    if (m >= M || n >= N) return;
    float* p = base + (size_t)m * ld + n;
    *p = add ? *p + v : v;
  }
};

// DgradStore writes phase pixel m, channel c of dx.
struct DgradStore {
  float* dx;
  Geom g;
  Phase f;
  int M;
  __device__ __forceinline__ void operator()(int m, int c, float v) const {
    if (m >= M || c >= g.C) return;
    const int hw = f.Hp * f.Wp, n = m / hw, rest = m - n * hw, hh = rest / f.Wp, ww = rest - hh * f.Wp;
    const int h = hh * g.str + f.ph, w = ww * g.str + f.pw;
    dx[(((long long)n * g.H + h) * g.W + w) * g.C + c] = v;
  }
};

template <int P, int BN, int VW>
__device__ __forceinline__ void fprop(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
                                      const Geom& g) {
  using SrcA = FpropA<VW>;
  using SrcB = ig::Matrix<false, VW>;  // w (RSC x K): element (k, t) at w[t K + k]
  using Blk = ig::Block<P, 128, BN, true, false, VW, VW, SrcA, SrcB>;
  __shared__ __align__(128) float sm[Blk::SMEM];
  const int M = g.N * g.P * g.Q, Kt = g.R * g.S * g.C;
  const SrcA sa{x, g, M, Kt};
  const SrcB sb{w, g.K, g.K, Kt};
  Store out{y, g.K, M, g.K, false};
  Blk::run(sm, sa, sb, blockIdx.y * 128, blockIdx.x * BN, 0, Kt, out);
}

template <int P, int BN, int VW>
__device__ __forceinline__ void dgrad(const float* __restrict__ dy, const float* __restrict__ w,
                                      float* __restrict__ dx, const Geom& g) {
  using SrcA = DgradA<VW>;
  using SrcB = DgradB<VW>;
  using Blk = ig::Block<P, 128, BN, true, true, VW, VW, SrcA, SrcB>;
  __shared__ __align__(128) float sm[Blk::SMEM];
  const Phase f(g, blockIdx.z);
  const int M = g.N * f.Hp * f.Wp, Kt = f.Rv * f.Sv * g.K;
  if ((int)blockIdx.y * 128 >= M) return;  // this phase has fewer pixels: the whole block leaves
  const SrcA sa{dy, g, f, M, Kt};
  const SrcB sb{w, g, f, Kt};
  DgradStore out{dx, g, f, M};
  Blk::run(sm, sa, sb, blockIdx.y * 128, blockIdx.x * BN, 0, Kt, out);
}

template <int P, int BN, int VW>
__device__ __forceinline__ void wgrad(const float* __restrict__ x, const float* __restrict__ dy, float* out,
                                      const Geom& g, int kChunk, int accumulate) {
  using SrcA = WgradA<VW>;
  using SrcB = ig::Matrix<false, VW>;  // dy (NPQ x K): element (k, m) at dy[m K + k]
  using Blk = ig::Block<P, 128, BN, false, false, VW, VW, SrcA, SrcB>;
  __shared__ __align__(128) float sm[Blk::SMEM];
  const int Kr = g.N * g.P * g.Q, taps = g.R * g.S * g.C;
  const int k0 = blockIdx.z * kChunk, k1 = min(Kr, k0 + kChunk);
  const SrcA sa{x, g, k1};
  const SrcB sb{dy, g.K, g.K, k1};
  Store st{out + (accumulate ? 0 : (size_t)blockIdx.z * taps * g.K), g.K, taps, g.K, accumulate != 0};
  Blk::run(sm, sa, sb, blockIdx.y * 128, blockIdx.x * BN, k0, k1, st);
}

}  // namespace conv
}  // namespace sincere

#define SINCERE_CONV_ARGS int N, int C, int H, int W, int K, int R, int S, int stride, int pad
#define SINCERE_GEOM sincere::conv::Geom(N, C, H, W, K, R, S, stride, pad)

#define SINCERE_CONV(PREC, P, TILE, BN, VEC, VW)                                                                 \
  extern "C" __global__ void __launch_bounds__(sincere::NT, 2)                                                   \
      conv_fprop_##PREC##_##TILE##_##VEC(const float* x, const float* w, float* y, SINCERE_CONV_ARGS) {         \
    sincere::conv::fprop<P, BN, VW>(x, w, y, SINCERE_GEOM);                                                      \
  }                                                                                                              \
  EMU_REGISTER(conv_fprop_##PREC##_##TILE##_##VEC)                                                               \
  extern "C" __global__ void __launch_bounds__(sincere::NT, 2)                                                   \
      conv_dgrad_##PREC##_##TILE##_##VEC(const float* dy, const float* w, float* dx, SINCERE_CONV_ARGS) {       \
    sincere::conv::dgrad<P, BN, VW>(dy, w, dx, SINCERE_GEOM);                                                    \
  }                                                                                                              \
  EMU_REGISTER(conv_dgrad_##PREC##_##TILE##_##VEC)                                                               \
  extern "C" __global__ void __launch_bounds__(sincere::NT, 2) conv_wgrad_##PREC##_##TILE##_##VEC(              \
      const float* x, const float* dy, float* out, SINCERE_CONV_ARGS, int kChunk, int accumulate) {              \
    sincere::conv::wgrad<P, BN, VW>(x, dy, out, SINCERE_GEOM, kChunk, accumulate);                               \
  }                                                                                                              \
  EMU_REGISTER(conv_wgrad_##PREC##_##TILE##_##VEC)

// SINCERE_CONVS defines one precision's twelve kernels.
#define SINCERE_CONVS(PREC, P)                 \
  SINCERE_CONV(PREC, P, 128x128, 128, v4, 4) \
  SINCERE_CONV(PREC, P, 128x64, 64, v4, 4)   \
  SINCERE_CONV(PREC, P, 128x128, 128, s1, 1) \
  SINCERE_CONV(PREC, P, 128x64, 64, s1, 1)

SINCERE_CONVS(fp32, sincere::ig::FP32)
#if SINCERE_TC
SINCERE_CONVS(tf32, sincere::ig::TF32)
#endif

extern "C" __global__ void __launch_bounds__(sincere::NT)
    conv_wgrad_reduce(const float* __restrict__ ws, int splits, long long count, float* __restrict__ dw) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (long long)gridDim.x * blockDim.x) {
    float s = 0.f;
    for (int z = 0; z < splits; z++) s += ws[(size_t)z * count + i];
    dw[i] += s;
  }
}
EMU_REGISTER(conv_wgrad_reduce)
