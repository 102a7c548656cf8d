//go:build gpuemu

// The kernels of elementwise.cu, compiled for the CPU with emu.h (a translation unit
// of their own: the families share helper names).
#include "elementwise_cu.h"  // a link to ../kernels/cuda/elementwise.cu, so that go build sees its changes
