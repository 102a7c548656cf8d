//go:build !linux

package runlock

// bootID is unknown outside Linux: holders are told apart by pid alone.
func bootID() string { return "" }

// startTicks is unknown outside Linux.
func startTicks(int) uint64 { return 0 }
