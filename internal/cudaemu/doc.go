// Package cudaemu runs the CUDA kernels of internal/kernels/cuda on the CPU,
// through a small model of the CUDA execution model (see
// internal/kernels/cuda/emu.h), so that the CUDA engine's host code and its
// kernels are tested on machines without a GPU. It is built only with the
// gpuemu build tag and needs cgo and a C++17 compiler:
//
//	go test -tags gpuemu ./internal/kernels/cuda/
//
// It is slow (one block at a time, on one core) and meant for small
// batches. loss_cu.h and emu.h here are symbolic links to the files in
// internal/kernels/cuda: go build hashes only the files in a package's
// directory, so the links are what make it rebuild the emulator when the
// kernels change.
package cudaemu
