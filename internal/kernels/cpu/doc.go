// Package cpu is the CPU backend of package kernels: Device, the training
// device (packed SGEMM, convolutions packed straight from channels-last
// tensors without a patch matrix, batch norm with its fused ReLU, the
// elementwise operations, the SGD step), and LossEngine, the fused loss of
// DESIGN section 2 on host memory. Their hand-written kernels exist twice
// with the same semantics, AVX2/FMA assembly (ops_amd64.s) and portable Go,
// and one kernelSet, chosen when a device or engine is made, says which run.
//
// Work runs when it is called, spread over the workers in disjoint parts of
// each output, each summed in one fixed order: results are bit-identical
// whatever the number of workers. Scratch memory is kept between calls and
// counted in the device's MemStats.
package cpu
