// Package sizes checks sizes read from files and flags before anything is
// allocated: products of dimensions computed without overflow against a
// limit, and the limits themselves, so that a header or a flag that claims
// an absurd size is an error naming it rather than an out-of-memory crash.
package sizes

import (
	"fmt"
	"math/bits"
)

// Limits shared by the readers and the command line.
const (
	// MaxWorkers bounds every worker-goroutine count a user sets.
	MaxWorkers = 256
	// MaxDatasetBytes bounds the pixels of one split held in memory (64 GiB).
	MaxDatasetBytes = 1 << 36
	// MaxImagePixels bounds the width times height of an image file a
	// folder data set decodes (a 33-megapixel photo, 8K video frames).
	MaxImagePixels = 1 << 25
	// MaxImageSide bounds the side of the images a model takes.
	MaxImageSide = 4096
)

// Product returns the product of factors, or ok false when a factor is
// negative or the product exceeds limit (checked without overflow).
func Product(limit int64, factors ...int) (p int64, ok bool) {
	p = 1
	for _, f := range factors {
		if f < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(uint64(p), uint64(f))
		if hi != 0 || lo > uint64(limit) {
			return 0, false
		}
		p = int64(lo)
	}
	return p, true
}

// Check returns the product of factors, or an error saying that what (a
// file, a flag) asks for more than limit units (bytes, values, pixels).
func Check(what, units string, limit int64, factors ...int) (int, error) {
	p, ok := Product(limit, factors...)
	if !ok {
		return 0, fmt.Errorf("%s: %s is more than the limit of %d %s", what, describe(factors), limit, units)
	}
	return int(p), nil
}

// describe writes factors as "a x b x c".
func describe(factors []int) string {
	s := ""
	for i, f := range factors {
		if i > 0 {
			s += " x "
		}
		s += fmt.Sprint(f)
	}
	return s
}
