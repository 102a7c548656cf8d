// Package cudaemu runs the CUDA kernels of internal/kernels/cuda on the CPU,
// through a small model of the CUDA execution model (see
// internal/kernels/cuda/emu.h), so that the CUDA engine's host code and its
// kernels are tested on machines without a GPU. It is built only with the
// gpuemu build tag and needs cgo and a C++17 compiler:
//
//	go test -tags gpuemu ./internal/kernels/
//
// It is slow (one block at a time, on one core) and meant for small
// batches.
package cudaemu
