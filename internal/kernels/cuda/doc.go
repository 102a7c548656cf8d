// Package cuda is the CUDA backend of package kernels: the fused loss
// engine on an NVIDIA GPU, its kernels (loss.cu, compiled by `make ptx` to
// committed PTX that the driver compiles for the GPU at load time) and two
// drivers beneath it: gorgonia.org/cu on a GPU (build tag gpu; cu
// initialises the driver when the program starts, so only the gpu build
// imports it) and the CPU emulator of internal/cudaemu (build tag gpuemu),
// which runs the same kernels on the CPU for tests without a GPU. Without
// either tag the package only says that CUDA is not built in.
package cuda
