// Package atomicfile writes files so that they appear whole or not at all:
// the content goes to a temporary file beside the target, is synced, and is
// renamed into place. An interrupted write leaves the old file (or none).
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Write writes b to path atomically.
func Write(path string, b []byte) error {
	return WriteFunc(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// CheckTarget reports a path that cannot be written atomically: a folder
// (or a path ending in a separator), or one in a missing folder. Write
// checks it too; callers that compute long before writing check it first.
func CheckTarget(path string) error {
	if path == "" || strings.HasSuffix(path, string(filepath.Separator)) {
		return fmt.Errorf("%q: want a file name, not a folder", path)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s: is a folder; want a file name", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a folder", path, dir)
	}
	return nil
}

// TempPattern is how the temporary files are named: "." + the target's
// name + TempPattern, so that a folder's leftovers can be found (Clean).
const TempPattern = ".tmp-*"

// WriteFunc writes what fill produces to path atomically; if fill fails,
// nothing is left behind.
func WriteFunc(path string, fill func(w io.Writer) error) error {
	if err := CheckTarget(path); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+TempPattern)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := fill(tmp); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	return nil
}

// Clean removes the temporary files an interrupted write (a killed
// process) left in dir for the named targets (for any target when none is
// named), and returns how many it removed. Call it only where no other
// process is writing those targets.
func Clean(dir string, targets ...string) (int, error) {
	patterns := []string{".*" + TempPattern}
	if len(targets) > 0 {
		patterns = patterns[:0]
		for _, t := range targets {
			patterns = append(patterns, "."+globEscape(t)+TempPattern)
		}
	}
	removed := 0
	for _, pattern := range patterns {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return removed, err
		}
		for _, m := range matches {
			if st, err := os.Lstat(m); err != nil || !st.Mode().IsRegular() {
				continue
			}
			if err := os.Remove(m); err != nil && !os.IsNotExist(err) {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// globEscape quotes the pattern characters of a file name.
func globEscape(name string) string {
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
