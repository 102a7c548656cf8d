// Kernels that test the emulator itself (cudaemu_test.go): barriers,
// shuffles, divergence detection and WMMA. Included by emu.cpp after
// loss.cu, so emu.h is already in.

namespace selftest {

// barrier: each thread writes its index and, after the barrier, reads its
// mirror's. Without a working barrier the first threads read poison.
extern "C" __global__ void emu_selftest_barrier(int* out) {
  __shared__ int s[1024];
  const int t = threadIdx.x, n = blockDim.x;
  s[t] = t + 1000 * blockIdx.x;
  __syncthreads();
  out[blockIdx.x * n + t] = s[n - 1 - t];
}
EMU_REGISTER(emu_selftest_barrier)

// shuffle: out[t] = the value of lane t ^ mask, for float and double.
extern "C" __global__ void emu_selftest_shuffle(float* outF, double* outD, int mask) {
  const int t = threadIdx.x;
  outF[t] = __shfl_xor_sync(0xffffffffu, (float)t * 1.5f, mask);
  outD[t] = __shfl_xor_sync(0xffffffffu, (double)t * 2.5, mask);
}
EMU_REGISTER(emu_selftest_shuffle)

// divergent: half the block waits at a barrier the other half never reaches.
extern "C" __global__ void emu_selftest_divergent(int* out) {
  if (threadIdx.x < blockDim.x / 2) __syncthreads();
  out[threadIdx.x] = 1;
}
EMU_REGISTER(emu_selftest_divergent)

// wmma: c (16 x 16, row-major) = tf32(a) (16 x 8, row-major) tf32(b)
// (8 x 16, stored column-major: b[n * 8 + k]), one warp.
extern "C" __global__ void emu_selftest_wmma(const float* a, const float* b, float* c) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc;
  wmma::load_matrix_sync(fa, a, 8);
  wmma::load_matrix_sync(fb, b, 8);
  for (int i = 0; i < fa.num_elements; i++) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
  for (int i = 0; i < fb.num_elements; i++) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
  wmma::fill_fragment(fc, 0.f);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}
EMU_REGISTER(emu_selftest_wmma)

// race: each thread writes s[t] and, WITHOUT a barrier, reads s[t ^ 1];
// then everyone restores s to -1. What it reads depends on which of the
// pair ran first: the reversed schedule gives other results (the test
// checks that it does, so that the schedule exposes missing barriers).
extern "C" __global__ void emu_selftest_race(int* out) {
  __shared__ int s[1024];
  const int t = threadIdx.x;
  if (t == 0 && blockIdx.x == 0 && out[blockDim.x] == 0) {
    for (int i = 0; i < 1024; i++) s[i] = -1;
  }
  __syncthreads();
  s[t] = t;
  out[t] = s[t ^ 1];  // the missing barrier
  __syncthreads();
  s[t] = -1;
}
EMU_REGISTER(emu_selftest_race)

// cpasync: thread t copies 16 bytes of src + 4 t to s[4 t..], of which
// only (t % 5) * 4 bytes are read (the rest zero filled), waits, and after
// a barrier writes its neighbour's copy to out. Before the wait the copy
// must not have landed: before[t] is what s held then (the poison 7).
extern "C" __global__ void emu_selftest_cpasync(const float* src, float* out, float* before) {
  __shared__ __align__(16) float s[4 * 64];
  const int t = threadIdx.x, n = blockDim.x;
  for (int i = 0; i < 4; i++) s[4 * t + i] = 7.f;
  __syncthreads();
  sincere::cpAsync<16>(s + 4 * t, src + 4 * t, (t % 5) * 4);
  sincere::cpAsyncCommit();
  before[t] = s[4 * t];
  sincere::cpAsyncWait<0>();
  __syncthreads();
  const int u = (t + 1) % n;
  for (int i = 0; i < 4; i++) out[4 * t + i] = s[4 * u + i];
}
EMU_REGISTER(emu_selftest_cpasync)

// syncwarp: lane 0 of each warp writes a value that, after __syncwarp,
// every lane of the warp reads.
extern "C" __global__ void emu_selftest_syncwarp(int* out) {
  __shared__ int s[32];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) s[w] = 100 + w;
  __syncwarp();
  out[threadIdx.x] = s[w];
}
EMU_REGISTER(emu_selftest_syncwarp)

// wmma_t: c (16 x 16) = tf32(a) tf32(b) with a stored column-major
// (a[k * 16 + m]) and b row-major (b[k * 16 + n]), one warp, c stored
// column-major (c[n * 16 + m]).
extern "C" __global__ void emu_selftest_wmma_t(const float* a, const float* b, float* c) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc;
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  for (int i = 0; i < fa.num_elements; i++) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
  for (int i = 0; i < fb.num_elements; i++) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
  wmma::fill_fragment(fc, 0.f);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_col_major);
}
EMU_REGISTER(emu_selftest_wmma_t)

}  // namespace selftest
