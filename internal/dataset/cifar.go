package dataset

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/sincere-ml/sincere/internal/regfile"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// CIFAR binary records: a label byte (CIFAR-100: coarse then fine) and
// 32x32 pixels per channel, red plane, green plane, blue plane.
const (
	cifarPixels  = 3 * 32 * 32
	cifar10Rec   = 1 + cifarPixels
	cifar100Rec  = 2 + cifarPixels
	cifarPerFile = 10000
)

// readCIFARFiles reads CIFAR binary files of exactly perFile records of
// recSize bytes each, whose label is at byte labelAt, and checks that the
// labels are below classes. A file's size is checked before it is read.
func readCIFARFiles(ctx context.Context, name string, paths []string, recSize, labelAt, perFile int, classes []string) (*Dataset, fileSums, error) {
	total, err := sizes.Check(name, "bytes", sizes.MaxDatasetBytes, len(paths), perFile, cifarPixels)
	if err != nil {
		return nil, nil, err
	}
	d := &Dataset{Name: name, Classes: classes, C: 3, H: 32, W: 32,
		Pixels: make([]byte, 0, total), Labels: make([]int32, 0, len(paths)*perFile)}
	sums := fileSums{}
	for _, p := range paths {
		raw, err := readCIFARFile(ctx, p, recSize, perFile)
		if err != nil {
			return nil, nil, err
		}
		h := sha256.Sum256(raw)
		sums[baseName(p)] = hex.EncodeToString(h[:])
		for off := 0; off < len(raw); off += recSize {
			y := raw[off+labelAt]
			if int(y) >= len(classes) {
				return nil, nil, fmt.Errorf("%s: record %d has label %d, outside the %d classes (wrong file?)", p, off/recSize, y, len(classes))
			}
			d.Labels = append(d.Labels, int32(y))
			d.Pixels = append(d.Pixels, raw[off+recSize-cifarPixels:off+recSize]...)
		}
	}
	return d, sums, d.check()
}

// readCIFARFile reads one file of exactly records records of recSize bytes.
func readCIFARFile(ctx context.Context, path string, recSize, records int) ([]byte, error) {
	f, size, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := int64(recSize) * int64(records)
	if size != want {
		return nil, fmt.Errorf("%s: %d bytes, want %d (%d records of %d bytes): truncated, or not the published CIFAR file", path, size, want, records, recSize)
	}
	raw := make([]byte, want)
	if _, err := io.ReadFull(ctxReader{ctx, f}, raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

// readNames reads a class-name file: one name per line, blank lines skipped.
func readNames(path string, want int) ([]string, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(names) != want {
		return nil, fmt.Errorf("%s: %d class names, want %d", path, len(names), want)
	}
	return names, nil
}

// loadCIFAR10 reads the CIFAR-10 binary version from dir (the extracted
// cifar-10-batches-bin folder): the five training batches or the test
// batch, perFile images each.
func loadCIFAR10(ctx context.Context, dir string, train bool, perFile int) (*Dataset, fileSums, error) {
	classes, err := readNames(filepath.Join(dir, "batches.meta.txt"), 10)
	if err != nil {
		return nil, nil, err
	}
	files := []string{filepath.Join(dir, "test_batch.bin")}
	if train {
		files = files[:0]
		for i := 1; i <= 5; i++ {
			files = append(files, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)))
		}
	}
	return readCIFARFiles(ctx, "cifar10", files, cifar10Rec, 0, perFile, classes)
}

// loadCIFAR100 reads the CIFAR-100 binary version from dir (the extracted
// cifar-100-binary folder), n images labelled with the 100 fine classes or,
// with coarse, the 20 superclasses.
func loadCIFAR100(ctx context.Context, dir string, train, coarse bool, n int) (*Dataset, fileSums, error) {
	namesFile, k, at, name := "fine_label_names.txt", 100, 1, "cifar100"
	if coarse {
		namesFile, k, at, name = "coarse_label_names.txt", 20, 0, "cifar100-coarse"
	}
	classes, err := readNames(filepath.Join(dir, namesFile), k)
	if err != nil {
		return nil, nil, err
	}
	file := "test.bin"
	if train {
		file = "train.bin"
	}
	return readCIFARFiles(ctx, name, []string{filepath.Join(dir, file)}, cifar100Rec, at, n, classes)
}
