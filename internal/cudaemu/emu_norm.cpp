//go:build gpuemu

// The kernels of norm.cu, compiled for the CPU with emu.h (a translation unit
// of their own: the families share helper names).
#include "norm_cu.h"  // a link to ../kernels/cuda/norm.cu, so that go build sees its changes
