package dataset

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR binary records: a label byte (CIFAR-100: coarse then fine) and
// 32x32 pixels per channel, red plane, green plane, blue plane.
const (
	cifarPixels  = 3 * 32 * 32
	cifar10Rec   = 1 + cifarPixels
	cifar100Rec  = 2 + cifarPixels
	cifarPerFile = 10000
)

// readCIFARFiles reads CIFAR binary files of records of recSize bytes whose
// label is at byte labelAt, and checks that each holds whole records and
// that the labels are below classes.
func readCIFARFiles(name string, paths []string, recSize, labelAt int, classes []string) (*Dataset, fileSums, error) {
	d := &Dataset{Name: name, Classes: classes, C: 3, H: 32, W: 32}
	sums := fileSums{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		h := sha256.Sum256(raw)
		sums[baseName(p)] = hex.EncodeToString(h[:])
		if len(raw) == 0 || len(raw)%recSize != 0 {
			return nil, nil, fmt.Errorf("%s: %d bytes is not a whole number of %d-byte CIFAR records (truncated or not a CIFAR file)", p, len(raw), recSize)
		}
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

// readNames reads a class-name file: one name per line, blank lines skipped.
func readNames(path string, want int) ([]string, error) {
	f, err := os.Open(path)
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

// LoadCIFAR10 reads the CIFAR-10 binary version from dir (the extracted
// cifar-10-batches-bin folder): the five training batches or the test batch.
func LoadCIFAR10(dir string, train bool) (*Dataset, error) {
	d, _, err := loadCIFAR10(dir, train)
	return d, err
}

func loadCIFAR10(dir string, train bool) (*Dataset, fileSums, error) {
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
	return readCIFARFiles("cifar10", files, cifar10Rec, 0, classes)
}

// LoadCIFAR100 reads the CIFAR-100 binary version from dir (the extracted
// cifar-100-binary folder), labelled with the 100 fine classes or, with
// coarse, the 20 superclasses.
func LoadCIFAR100(dir string, train, coarse bool) (*Dataset, error) {
	d, _, err := loadCIFAR100(dir, train, coarse)
	return d, err
}

func loadCIFAR100(dir string, train, coarse bool) (*Dataset, fileSums, error) {
	namesFile, n, at, name := "fine_label_names.txt", 100, 1, "cifar100"
	if coarse {
		namesFile, n, at, name = "coarse_label_names.txt", 20, 0, "cifar100-coarse"
	}
	classes, err := readNames(filepath.Join(dir, namesFile), n)
	if err != nil {
		return nil, nil, err
	}
	file := "test.bin"
	if train {
		file = "train.bin"
	}
	return readCIFARFiles(name, []string{filepath.Join(dir, file)}, cifar100Rec, at, classes)
}
