//go:build gpuemu

// The kernels of gemm.cu, compiled for the CPU with emu.h (a translation unit
// of their own: the families share helper names).
#include "gemm_cu.h"  // a link to ../kernels/cuda/gemm.cu, so that go build sees its changes
