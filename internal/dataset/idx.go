package dataset

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sincere-ml/sincere/internal/regfile"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// ctxReader fails a read once ctx ends, so that a long read stops within
// one chunk of a signal.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("loading stopped: %w", err)
	}
	return c.r.Read(p[:min(len(p), 1<<20)])
}

// readIDX reads an IDX file of unsigned bytes (type 0x08), gzipped when its
// name ends in .gz, whose dimensions must be want (the published shape),
// and returns its data and the SHA-256 of its (decompressed) content, all
// in one pass. The dimensions are checked before anything is allocated,
// and the data must have exactly the size they announce.
func readIDX(ctx context.Context, path string, want []int) (data []byte, sum string, err error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(ctxReader{ctx, f}, 1<<20)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", fmt.Errorf("%s: %w", path, err)
			}
			return nil, "", fmt.Errorf("%s: not a gzip file: %v", path, err)
		}
		defer gz.Close()
		r = gz
	}
	h := sha256.New()
	data, err = parseIDX(io.TeeReader(r, h), path, want)
	if err != nil {
		return nil, "", err
	}
	return data, hex.EncodeToString(h.Sum(nil)), nil
}

// parseIDX reads an IDX header, checks that its dimensions are want, and
// reads exactly the data they announce from r.
func parseIDX(r io.Reader, path string, want []int) (data []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%s: truncated IDX header: %w", path, err)
	}
	if hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] < 1 || hdr[3] > 4 {
		return nil, fmt.Errorf("%s: bad IDX magic % x (want 00 00 08 and 1-4 dimensions)", path, hdr)
	}
	dims := make([]int, hdr[3])
	for i := range dims {
		var v [4]byte
		if _, err := io.ReadFull(r, v[:]); err != nil {
			return nil, fmt.Errorf("%s: truncated IDX header: %w", path, err)
		}
		dims[i] = int(binary.BigEndian.Uint32(v[:]))
	}
	if !slices.Equal(dims, want) {
		return nil, fmt.Errorf("%s: IDX dimensions %v, want %v (the published shape)", path, dims, want)
	}
	size, err := sizes.Check(path, "bytes", sizes.MaxDatasetBytes, dims...)
	if err != nil {
		return nil, err
	}
	data = make([]byte, size)
	if n, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("%s: truncated: dimensions %v need %d bytes, file has %d (%w)", path, dims, size, n, err)
	}
	var extra [1]byte
	if n, _ := r.Read(extra[:]); n > 0 {
		return nil, fmt.Errorf("%s: trailing data after the %d bytes of dimensions %v", path, size, dims)
	}
	return data, nil
}

// loadIDXSplit reads an image file (n x h x w) and a label file (n) into a
// dataset with the given class names, and returns the SHA-256 of each file's
// content by its name without .gz.
func loadIDXSplit(ctx context.Context, name, imagesPath, labelsPath string, classes []string, n, h, w int) (*Dataset, fileSums, error) {
	pixels, imgSum, err := readIDX(ctx, imagesPath, []int{n, h, w})
	if err != nil {
		return nil, nil, err
	}
	labels, labSum, err := readIDX(ctx, labelsPath, []int{n})
	if err != nil {
		return nil, nil, err
	}
	sums := fileSums{baseName(imagesPath): imgSum, baseName(labelsPath): labSum}
	d := &Dataset{Name: name, Pixels: pixels, Labels: make([]int32, len(labels)), Classes: classes, C: 1, H: h, W: w}
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
