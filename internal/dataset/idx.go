package dataset

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxIDXBytes bounds the data an IDX header may announce (4 GiB): a larger
// one is treated as corrupt rather than allocated.
const maxIDXBytes = 1 << 32

// readIDX reads an IDX file of unsigned bytes (type 0x08), gzipped when its
// name ends in .gz, and returns its dimensions, its data and the SHA-256 of
// its (decompressed) content, all in one pass. The data must have exactly
// the size the header announces.
func readIDX(path string) (dims []int, data []byte, sum string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, "", err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, "", fmt.Errorf("%s: not a gzip file: %v", path, err)
		}
		defer gz.Close()
		r = gz
	}
	h := sha256.New()
	dims, data, err = parseIDX(io.TeeReader(r, h), path)
	if err != nil {
		return nil, nil, "", err
	}
	return dims, data, hex.EncodeToString(h.Sum(nil)), nil
}

// parseIDX reads an IDX header and exactly the data it announces from r.
func parseIDX(r io.Reader, path string) (dims []int, data []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("%s: truncated IDX header: %v", path, err)
	}
	if hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] < 1 || hdr[3] > 4 {
		return nil, nil, fmt.Errorf("%s: bad IDX magic % x (want 00 00 08 and 1-4 dimensions)", path, hdr)
	}
	dims = make([]int, hdr[3])
	size := 1
	for i := range dims {
		var v uint32
		if err := binary.Read(r, binary.BigEndian, &v); err != nil {
			return nil, nil, fmt.Errorf("%s: truncated IDX header: %v", path, err)
		}
		dims[i] = int(v)
		if v == 0 || size > maxIDXBytes/int(v) {
			return nil, nil, fmt.Errorf("%s: implausible IDX dimensions %v", path, dims[:i+1])
		}
		size *= int(v)
	}
	data = make([]byte, size)
	if n, err := io.ReadFull(r, data); err != nil {
		return nil, nil, fmt.Errorf("%s: truncated: dimensions %v need %d bytes, file has %d (%v)", path, dims, size, n, err)
	}
	var extra [1]byte
	if n, _ := r.Read(extra[:]); n > 0 {
		return nil, nil, fmt.Errorf("%s: trailing data after the %d bytes of dimensions %v", path, size, dims)
	}
	return dims, data, nil
}

// loadIDXSplit reads an image file (N x H x W) and a label file (N) into a
// dataset with the given class names, and returns the SHA-256 of each file's
// content by its name without .gz.
func loadIDXSplit(name, imagesPath, labelsPath string, classes []string) (*Dataset, fileSums, error) {
	dims, pixels, imgSum, err := readIDX(imagesPath)
	if err != nil {
		return nil, nil, err
	}
	if len(dims) != 3 {
		return nil, nil, fmt.Errorf("%s: want 3 dimensions (images, rows, columns), got %v", imagesPath, dims)
	}
	ldims, labels, labSum, err := readIDX(labelsPath)
	if err != nil {
		return nil, nil, err
	}
	if len(ldims) != 1 || ldims[0] != dims[0] {
		return nil, nil, fmt.Errorf("%s: %v labels for the %d images of %s", labelsPath, ldims, dims[0], imagesPath)
	}
	sums := fileSums{baseName(imagesPath): imgSum, baseName(labelsPath): labSum}
	d := &Dataset{Name: name, Pixels: pixels, Labels: make([]int32, len(labels)), Classes: classes, C: 1, H: dims[1], W: dims[2]}
	for i, y := range labels {
		if int(y) >= len(classes) {
			return nil, nil, fmt.Errorf("%s: label %d at index %d, outside the %d classes", labelsPath, y, i, len(classes))
		}
		d.Labels[i] = int32(y)
	}
	return d, sums, d.check()
}

// fileSums maps a data file's name (without .gz) to the SHA-256 of its content.
type fileSums map[string]string

// baseName is a path's file name without a .gz suffix.
func baseName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".gz") }
