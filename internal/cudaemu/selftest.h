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

}  // namespace selftest
