package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sincere-ml/sincere/internal/runlock"
)

// lockRun locks a run directory (creating it) for one command: it returns
// a context that ends if the lock is taken over, and the function that
// gives the lock back (and removes the directory if it was made here and
// is still empty). wait waits for another holder instead of failing.
func lockRun(ctx context.Context, dir, command string, wait bool, rep Reporter) (context.Context, func(), error) {
	made := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		made = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	lctx, l, err := runlock.Acquire(ctx, dir, runlock.Options{Wait: wait, Command: command, OnWait: func(h *runlock.HeldError) {
		rep.Logf("%s: waiting for %s to finish with it", dir, h.Holder)
	}})
	if err != nil {
		if made {
			os.Remove(dir)
		}
		return nil, nil, err
	}
	return lctx, func() {
		l.Release()
		if made {
			os.Remove(dir) // only if empty: a run that never started
		}
	}, nil
}

// lockLost returns an error if ctx ended because another process took the
// run's lock over (judging this one dead): then nothing more may be
// written into the run directory.
func lockLost(ctx context.Context, dir string) error {
	if errors.Is(context.Cause(ctx), runlock.ErrLost) {
		return fmt.Errorf("%s: stopped without writing: %w", dir, runlock.ErrLost)
	}
	return nil
}
