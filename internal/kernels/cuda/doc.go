// Package cuda is the CUDA backend of package kernels: the training device
// (Device: each kernels.Device operation as kernel launches on one stream)
// and the fused loss engine (LossEngine, a thin wrapper over the device's
// contrastive loss) on an NVIDIA GPU; their kernels, one source per family
// (loss.cu, elementwise.cu, norm.cu, gemm.cu, conv.cu, sharing common.h and
// igemm.h), compiled by `make ptx` to committed PTX that the driver
// compiles for the GPU at load time; and two drivers beneath them:
// gorgonia.org/cu on a GPU (build tag gpu; cu initialises the driver when
// the program starts, so only the gpu build imports it) and the CPU
// emulator of internal/cudaemu (build tag gpuemu), which runs the same
// kernels on the CPU for tests without a GPU. Without either tag the
// package only says that CUDA is not built in.
package cuda
