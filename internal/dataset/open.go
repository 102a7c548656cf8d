package dataset

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// RootEnv is the environment variable that sets the default data root.
const RootEnv = "SINCERE_DATA_ROOT"

// DefaultRoot returns the data root: $SINCERE_DATA_ROOT, else
// <user cache dir>/sincere/data (~/.cache/sincere/data on Linux).
func DefaultRoot() string {
	if v := os.Getenv(RootEnv); v != "" {
		return v
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "sincere", "data")
	}
	return filepath.Join(".", "data")
}

// FolderPrefix marks a data set given as a folder of class sub-folders.
const FolderPrefix = "folder:"

// SyntheticPrefix gives the synthetic data set another image shape:
// "synthetic:3x32x32" is CIFAR-shaped.
const SyntheticPrefix = "synthetic:"

// syntheticShape is the CxHxW of a "synthetic:" name, digits only.
var syntheticShape = regexp.MustCompile(`^([0-9]+)x([0-9]+)x([0-9]+)$`)

// ParseSynthetic returns the options of a "synthetic" or "synthetic:CxHxW"
// name; anything but three whole numbers after the prefix is an error.
func ParseSynthetic(name string) (SyntheticOptions, bool, error) {
	if name == "synthetic" {
		return DefaultSynthetic, true, nil
	}
	shape, ok := strings.CutPrefix(name, SyntheticPrefix)
	if !ok {
		return SyntheticOptions{}, false, nil
	}
	o := DefaultSynthetic
	m := syntheticShape.FindStringSubmatch(shape)
	if m == nil {
		return o, true, fmt.Errorf("%q: want synthetic:CxHxW with whole numbers, e.g. synthetic:3x32x32", name)
	}
	for i, p := range []*int{&o.C, &o.H, &o.W} {
		v, err := strconv.Atoi(m[i+1])
		if err != nil {
			v = math.MaxInt // out of range: Validate says so
		}
		*p = v
	}
	return o, true, o.Validate()
}

// Spec names the data a run uses: a named data set, or "folder:PATH" with
// the size and channels its images are resized to.
type Spec struct {
	// Name is a registry name or FolderPrefix + a path.
	Name string
	// Root is the data root for named sets.
	Root string
	// Size and Channels apply to folders only.
	Size, Channels int
	// Fetch, if not nil, downloads a named set that is found nowhere.
	Fetch *Fetcher
}

// Open loads the training and test splits a Spec names. A named set is
// looked for in the data root, then where package managers put it, then
// downloaded (when s.Fetch is set); a folder without train/ and test/
// sub-folders has no test split (test is nil).
func Open(ctx context.Context, s Spec) (train, test *Dataset, err error) {
	if path, ok := strings.CutPrefix(s.Name, FolderPrefix); ok {
		trDir, teDir, err := FolderSplits(path)
		if err != nil {
			return nil, nil, err
		}
		if train, err = LoadFolder(ctx, trDir, s.Size, s.Channels, nil); err != nil {
			return nil, nil, err
		}
		if teDir != "" {
			if test, err = LoadFolder(ctx, teDir, s.Size, s.Channels, train.Classes); err != nil {
				return nil, nil, err
			}
		}
		return train, test, nil
	}
	if o, ok, err := ParseSynthetic(s.Name); ok {
		if err != nil {
			return nil, nil, err
		}
		if train, err = synthetic(ctx, o, true); err != nil {
			return nil, nil, err
		}
		test, err = synthetic(ctx, o, false)
		return train, test, err
	}
	n, err := Lookup(s.Name)
	if err != nil {
		return nil, nil, err
	}
	loc := n.Locate(s.Root)
	if !loc.Found() {
		if s.Fetch == nil {
			return nil, nil, n.Missing(s.Root)
		}
		if err := s.Fetch.Fetch(ctx, n, s.Root); err != nil {
			return nil, nil, fmt.Errorf("%w (and %v)", n.Missing(s.Root), err)
		}
		loc = n.Locate(s.Root)
	}
	if train, err = n.Load(ctx, loc, true); err != nil {
		return nil, nil, err
	}
	if test, err = n.Load(ctx, loc, false); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
