//go:build gpuemu

// The kernels of conv.cu, compiled for the CPU with emu.h (a translation unit
// of their own: the families share helper names).
#include "conv_cu.h"  // a link to ../kernels/cuda/conv.cu, so that go build sees its changes
