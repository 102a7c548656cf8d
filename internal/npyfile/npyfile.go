// Package npyfile reads and writes the NumPy .npy files the command line
// exchanges: embedding matrices, label vectors and gradients. It checks
// every header against the file's size before decoding, so a truncated or
// malformed file is an error that names it, never a panic or a silently
// short array; writes go to a temporary file that is renamed into place.
package npyfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"codeberg.org/sbinet/npyio/npy"

	"github.com/sincere-ml/sincere/internal/atomicfile"
)

// maxElements bounds the arrays this package will decode (2^34 values): a
// header that claims more is treated as corrupt rather than allocated.
const maxElements = 1 << 34

// array is a decoded .npy file: its values, shape and NumPy type string.
type array struct {
	data  any
	shape []int
	dtype string
}

// read decodes the .npy file at path after checking that its header is
// well formed and that the data that follows has exactly the size the
// header promises.
func read(path string) (arr array, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return array{}, err
	}
	defer func() {
		// npyio trusts its headers; a panic while decoding one means the
		// file is malformed in a way the checks below did not catch.
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: malformed .npy file", path)
		}
	}()
	if len(raw) < 10 || !bytes.Equal(raw[:6], npy.Magic[:]) {
		return array{}, fmt.Errorf("%s: not a .npy file (bad magic)", path)
	}
	if err := checkHeaderText(raw); err != nil {
		return array{}, fmt.Errorf("%s: %w", path, err)
	}
	br := bytes.NewReader(raw)
	r, err := npy.NewReader(br)
	if err != nil {
		return array{}, fmt.Errorf("%s: malformed .npy header: %v", path, err)
	}
	shape := r.Header.Descr.Shape
	elems := 1
	for _, s := range shape {
		if s < 0 || (s > 0 && elems > maxElements/s) {
			return array{}, fmt.Errorf("%s: implausible shape %v", path, shape)
		}
		elems *= s
	}
	size, ok := itemSize(r.Header.Descr.Type)
	if !ok {
		return array{}, fmt.Errorf("%s: unsupported dtype %s (want a number type)", path, r.Header.Descr.Type)
	}
	if want, got := elems*size, br.Len(); got != want {
		if got < want {
			return array{}, fmt.Errorf("%s: truncated: shape %v of %s needs %d data bytes, file has %d", path, shape, r.Header.Descr.Type, want, got)
		}
		return array{}, fmt.Errorf("%s: %d bytes of trailing data after shape %v of %s", path, got-want, shape, r.Header.Descr.Type)
	}
	var a npy.Array
	if err := r.Read(&a); err != nil {
		return array{}, fmt.Errorf("%s: %v", path, err)
	}
	data := a.Data()
	if r.Header.Descr.Fortran && len(shape) == 2 {
		data = transposed(data, shape[0], shape[1])
	}
	return array{data: data, shape: shape, dtype: r.Header.Descr.Type}, nil
}

// checkHeaderText checks the parts of the header dictionary that npyio's
// parser indexes without checking: the length field, the newline that ends
// the header, and the three keys in order.
func checkHeaderText(raw []byte) error {
	var start, n int
	switch raw[6] {
	case 1:
		start, n = 10, int(raw[8])|int(raw[9])<<8
	case 2, 3:
		if len(raw) < 12 {
			return errors.New("truncated .npy header")
		}
		start = 12
		n = int(raw[8]) | int(raw[9])<<8 | int(raw[10])<<16 | int(raw[11])<<24
	default:
		return fmt.Errorf("unsupported .npy version %d", raw[6])
	}
	if n <= 0 || start+n > len(raw) {
		return errors.New("truncated .npy header")
	}
	hdr := raw[start : start+n]
	if bytes.LastIndexByte(hdr, '\n') < 0 {
		return errors.New("malformed .npy header (no newline)")
	}
	d := bytes.Index(hdr, []byte("'descr': "))
	o := bytes.Index(hdr, []byte("'fortran_order': "))
	s := bytes.Index(hdr, []byte("'shape': ("))
	e := bytes.Index(hdr, []byte("}"))
	if d < 0 || o < 0 || s < 0 || e < 0 || !(d < o && o < s && s < e) {
		return errors.New("malformed .npy header dictionary")
	}
	if bytes.IndexByte(hdr[s:e], ')') < 0 {
		return errors.New("malformed .npy shape")
	}
	return nil
}

// itemSize returns the byte size of a plain numeric NumPy type string such
// as "<f4" or "|u1".
func itemSize(dtype string) (int, bool) {
	if len(dtype) < 5 || dtype[0] != '\'' || dtype[len(dtype)-1] != '\'' {
		return 0, false
	}
	t := dtype[1 : len(dtype)-1]
	if len(t) != 3 || (t[0] != '<' && t[0] != '>' && t[0] != '|' && t[0] != '=') {
		return 0, false
	}
	switch t[1:] {
	case "b1", "i1", "u1":
		return 1, true
	case "i2", "u2":
		return 2, true
	case "i4", "u4", "f4":
		return 4, true
	case "i8", "u8", "f8":
		return 8, true
	}
	return 0, false
}

// transposed turns a column-major (Fortran order) rows x cols array into
// row-major order.
func transposed(data any, rows, cols int) any {
	switch v := data.(type) {
	case []float32:
		return transpose(v, rows, cols)
	case []float64:
		return transpose(v, rows, cols)
	case []int8:
		return transpose(v, rows, cols)
	case []int16:
		return transpose(v, rows, cols)
	case []int32:
		return transpose(v, rows, cols)
	case []int64:
		return transpose(v, rows, cols)
	case []uint8:
		return transpose(v, rows, cols)
	case []uint16:
		return transpose(v, rows, cols)
	case []uint32:
		return transpose(v, rows, cols)
	case []uint64:
		return transpose(v, rows, cols)
	}
	return data
}

// transpose returns the row-major copy of a column-major rows x cols array
// (element (i, j) at v[j*rows+i]).
func transpose[T any](v []T, rows, cols int) []T {
	if len(v) == 0 {
		return v // rows or cols is 0, the other may be anything
	}
	out := make([]T, len(v))
	for i := range rows {
		for j := range cols {
			out[i*cols+j] = v[j*rows+i]
		}
	}
	return out
}

// readMatrix reads a 2-D array.
func readMatrix(path string) (array, error) {
	arr, err := read(path)
	if err != nil {
		return array{}, err
	}
	if len(arr.shape) != 2 {
		return array{}, fmt.Errorf("%s: want a 2-D array (rows, dims), got shape %v", path, arr.shape)
	}
	return arr, nil
}

// ReadMatrix reads a 2-D float32 or float64 array as float32 in row-major
// order and returns it with its shape.
func ReadMatrix(path string) (data []float32, rows, cols int, err error) {
	arr, err := readMatrix(path)
	if err != nil {
		return nil, 0, 0, err
	}
	rows, cols = arr.shape[0], arr.shape[1]
	switch v := arr.data.(type) {
	case []float32:
		return v, rows, cols, nil
	case []float64:
		out := make([]float32, len(v))
		for i, x := range v {
			if f := float32(x); !math.IsInf(x, 0) && math.IsInf(float64(f), 0) {
				return nil, 0, 0, fmt.Errorf("%s: value %g at row %d column %d overflows float32", path, x, i/cols, i%cols)
			}
			out[i] = float32(x)
		}
		return out, rows, cols, nil
	}
	return nil, 0, 0, fmt.Errorf("%s: want float32 or float64 values, got %s", path, arr.dtype)
}

// ReadMatrix64 reads a 2-D float32 or float64 array as float64 in row-major
// order and returns it with its shape.
func ReadMatrix64(path string) (data []float64, rows, cols int, err error) {
	arr, err := readMatrix(path)
	if err != nil {
		return nil, 0, 0, err
	}
	rows, cols = arr.shape[0], arr.shape[1]
	switch v := arr.data.(type) {
	case []float64:
		return v, rows, cols, nil
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, rows, cols, nil
	}
	return nil, 0, 0, fmt.Errorf("%s: want float32 or float64 values, got %s", path, arr.dtype)
}

// ReadLabels reads a 1-D array of any integer type.
func ReadLabels(path string) ([]int, error) {
	arr, err := read(path)
	if err != nil {
		return nil, err
	}
	if len(arr.shape) != 1 {
		return nil, fmt.Errorf("%s: want a 1-D array of labels, got shape %v", path, arr.shape)
	}
	out, err := toInts(arr.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (dtype %s)", path, err, arr.dtype)
	}
	return out, nil
}

// toInts converts a slice of any integer type to []int.
func toInts(data any) ([]int, error) {
	switch v := data.(type) {
	case []int8:
		return convert(v), nil
	case []int16:
		return convert(v), nil
	case []int32:
		return convert(v), nil
	case []int64:
		return convert(v), nil
	case []uint8:
		return convert(v), nil
	case []uint16:
		return convert(v), nil
	case []uint32:
		return convert(v), nil
	case []uint64:
		for i, x := range v {
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("label %d at index %d does not fit in int64", x, i)
			}
		}
		return convert(v), nil
	}
	return nil, errors.New("labels must have an integer dtype")
}

func convert[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](v []T) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// WriteMatrix writes data (rows x cols, row-major) as a float32 .npy file.
// It writes a temporary file beside path and renames it into place, so path
// holds either its old content or the whole new array, never a part.
func WriteMatrix(path string, data []float32, rows, cols int) error {
	if len(data) != rows*cols || rows < 0 || cols < 0 {
		return fmt.Errorf("%s: %d values for shape (%d, %d)", path, len(data), rows, cols)
	}
	buf := make([]byte, 0, len(data)*4+128)
	buf = appendHeader(buf, "<f4", fmt.Sprintf("(%d, %d)", rows, cols))
	for _, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	return atomicfile.Write(path, buf)
}

// appendHeader appends a version 1.0 .npy header for a C-order array of
// the given NumPy type and shape (a Python tuple), padded with spaces and
// ended by a newline so that the data starts at a multiple of 64 bytes, as
// NumPy writes it. (npyio's writer discovers the type of every element by
// reflection, which takes seconds for the feature matrices a probe caches.)
func appendHeader(buf []byte, descr, shape string) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	const prefix = 10 // magic (6), version (2), header length (2)
	pad := 63 - (prefix+len(dict)+1+63)%64
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(dict)+pad+1))
	buf = append(buf, dict...)
	for range pad {
		buf = append(buf, ' ')
	}
	return append(buf, '\n')
}

// WriteLabels writes labels as a 1-D int64 .npy file, atomically.
func WriteLabels(path string, labels []int) error {
	v := make([]int64, len(labels))
	for i, y := range labels {
		v[i] = int64(y)
	}
	buf := make([]byte, 0, len(v)*8+128)
	buf = appendHeader(buf, "<i8", fmt.Sprintf("(%d,)", len(v)))
	for _, x := range v {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(x))
	}
	return atomicfile.Write(path, buf)
}
