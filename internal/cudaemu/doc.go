// Package cudaemu runs the CUDA kernels of internal/kernels/cuda on the CPU,
// through a small model of the CUDA execution model (see
// internal/kernels/cuda/emu.h), so that the kernels and the CUDA engine's
// host code are tested on machines without a GPU. It is built only with the
// gpuemu build tag and needs cgo and a C++17 compiler:
//
//	go test -tags gpuemu ./internal/cudaemu/ ./internal/kernels/cuda/
//
// Its own tests check each kernel family (loss, gemm, conv, norm,
// elementwise) against float64 references, on the ordinary schedule and on
// the reversed one (LaunchReversed), which exposes races and dependencies
// between blocks. It is slow (one block at a time, on one core) and meant
// for small sizes.
//
// Each family is a translation unit of its own (emu.cpp for loss.cu and the
// self-tests, emu_<family>.cpp for the others). The sources it compiles
// (<family>_cu.h, common.h, igemm.h, emu.h) are symbolic links to the files
// in internal/kernels/cuda: go build hashes only the files in a package's
// directory, so the links are what make it rebuild the emulator when the
// kernels change.
package cudaemu
