//go:build !amd64 || purego

package kernels

// fastOps returns nil: this build has only the portable kernels.
func fastOps() *tileOps { return nil }
