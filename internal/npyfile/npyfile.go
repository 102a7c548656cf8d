// Package npyfile reads and writes the NumPy .npy files the command line
// exchanges: embedding matrices, label vectors and gradients. Its reader
// parses the header dictionary as NumPy does (keys in any order, any
// spacing) and checks it against the file's size before reading the
// values, so a truncated, malformed or lying file is an error that names
// it, never a panic, a huge allocation or a silently short array; only
// regular files are read. Writes give numpy.save's bytes, through a
// temporary file that is renamed into place.
package npyfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/regfile"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// Limits on what a file may declare: a header that claims more is refused
// before anything is allocated.
const (
	// maxHeader bounds the header dictionary (NumPy itself reads at most
	// 10000 bytes of it by default).
	maxHeader = 1 << 16
	// maxElements bounds the values of one array (2^32).
	maxElements = 1 << 32
)

// header is a parsed .npy header.
type header struct {
	order   binary.ByteOrder
	code    string // the type without its byte order: "f4", "i8", "b1", ...
	size    int    // bytes per value
	dtype   string
	fortran bool
	shape   []int
	elems   int
	// data is the offset of the values in the file.
	data int64
}

// array is a decoded .npy file: its values, shape and NumPy type string.
type array struct {
	data  any
	shape []int
	dtype string
}

// read decodes the .npy file at path: the header is parsed and checked
// against the file's size before the values are read, so that nothing is
// allocated that the file does not hold.
func read(path string) (array, error) {
	f, size, err := regfile.Open(path)
	if err != nil {
		return array{}, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	h, err := readHeader(br)
	if err != nil {
		return array{}, fmt.Errorf("%s: %w", path, err)
	}
	want := h.data + int64(h.elems)*int64(h.size)
	if size != want {
		if size < want {
			return array{}, fmt.Errorf("%s: truncated: shape %v of %s needs %d data bytes, file has %d", path, h.shape, h.dtype, want-h.data, max(size-h.data, 0))
		}
		return array{}, fmt.Errorf("%s: %d bytes of trailing data after shape %v of %s", path, size-want, h.shape, h.dtype)
	}
	data, err := decode(br, h)
	if err != nil {
		return array{}, fmt.Errorf("%s: %w", path, err)
	}
	if h.fortran && len(h.shape) == 2 {
		data = transposed(data, h.shape[0], h.shape[1])
	}
	return array{data: data, shape: h.shape, dtype: h.dtype}, nil
}

// readHeader reads the magic string, the version, the header length and
// the header dictionary, and checks the dictionary: exactly the keys descr
// (a plain number type), fortran_order and shape (a tuple of whole
// numbers), in any order, as NumPy accepts them.
func readHeader(r io.Reader) (header, error) {
	var pre [8]byte
	_, err := io.ReadFull(r, pre[:])
	if !bytes.Equal(pre[:6], magic) { // also when fewer than 6 bytes were read
		return header{}, errors.New("not a .npy file (bad magic)")
	}
	if err != nil {
		return header{}, errors.New("truncated .npy header")
	}
	var hlen, start int
	switch pre[6] {
	case 1:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return header{}, errors.New("truncated .npy header")
		}
		hlen, start = int(binary.LittleEndian.Uint16(l[:])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return header{}, errors.New("truncated .npy header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(l[:])), 12
	default:
		return header{}, fmt.Errorf("unsupported .npy version %d", pre[6])
	}
	if hlen > maxHeader {
		return header{}, fmt.Errorf("header of %d bytes, more than the %d this reader accepts", hlen, maxHeader)
	}
	text := make([]byte, hlen)
	if _, err := io.ReadFull(r, text); err != nil {
		return header{}, errors.New("truncated .npy header")
	}
	h, err := parseDict(string(text))
	if err != nil {
		return header{}, fmt.Errorf("malformed .npy header: %w", err)
	}
	h.data = int64(start + hlen)
	return h, nil
}

// magic starts every .npy file.
var magic = []byte("\x93NUMPY")

// parseDict parses the header dictionary, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (8, 4), }.
func parseDict(s string) (header, error) {
	var h header
	p := &dictParser{s: s}
	if !p.eat('{') {
		return h, errors.New("want a {...} dictionary")
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, err
		}
		if seen[key] {
			return h, fmt.Errorf("key %q twice", key)
		}
		seen[key] = true
		if !p.eat(':') {
			return h, fmt.Errorf("want ':' after %q", key)
		}
		switch key {
		case "descr":
			d, err := p.str()
			if err != nil {
				return h, err
			}
			if err := h.setType(d); err != nil {
				return h, err
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				h.fortran = true
			case p.word("False"):
			default:
				return h, errors.New("fortran_order must be True or False")
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, err
			}
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return h, errors.New("want ',' or '}' after a value")
			}
			break
		}
	}
	if strings.TrimSpace(s[p.i:]) != "" {
		return h, errors.New("text after the dictionary")
	}
	if !seen["descr"] || !seen["fortran_order"] || !seen["shape"] {
		return h, errors.New("want the keys descr, fortran_order and shape")
	}
	elems, ok := sizes.Product(maxElements, h.shape...)
	if !ok {
		return h, fmt.Errorf("implausible shape %v (more than %d values)", h.shape, int64(maxElements))
	}
	h.elems = int(elems)
	return h, nil
}

// setType reads a plain numeric NumPy type string such as "<f4" or "|u1";
// anything else (strings, records, complex numbers) is refused.
func (h *header) setType(d string) error {
	h.dtype = "'" + d + "'"
	if len(d) != 3 {
		return fmt.Errorf("unsupported dtype %s (want a number type)", h.dtype)
	}
	switch d[0] {
	case '<', '|', '=':
		h.order = binary.LittleEndian
	case '>':
		h.order = binary.BigEndian
	default:
		return fmt.Errorf("unsupported dtype %s (want a number type)", h.dtype)
	}
	h.code, h.size = d[1:], int(d[2]-'0')
	switch d[1:] {
	case "b1", "i1", "u1", "i2", "u2", "i4", "u4", "f4", "i8", "u8", "f8":
		return nil
	}
	return fmt.Errorf("unsupported dtype %s (want a number type)", h.dtype)
}

// dictParser reads the tokens of a header dictionary.
type dictParser struct {
	s string
	i int
}

func (p *dictParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// eat consumes c (after spaces) if it comes next.
func (p *dictParser) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// word consumes w (after spaces) if it comes next.
func (p *dictParser) word(w string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str reads a quoted string without escapes.
func (p *dictParser) str() (string, error) {
	p.space()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("want a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", errors.New("escapes in a string")
	}
	p.i += end + 2
	return v, nil
}

// tuple reads a tuple of whole numbers: (), (8,), (8, 4) or (8, 4,); a
// trailing L (Python 2's long integers) is allowed.
func (p *dictParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("shape must be a tuple")
	}
	shape := []int{}
	for {
		if p.eat(')') {
			return shape, nil
		}
		p.space()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil || len(shape) >= 32 {
			return nil, errors.New("malformed .npy shape")
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		shape = append(shape, int(v))
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, errors.New("malformed .npy shape")
			}
			if len(shape) == 1 {
				return nil, errors.New("malformed .npy shape: a one-element tuple needs a comma, (n,)")
			}
			return shape, nil
		}
	}
}

// decode reads the h.elems values that follow the header, in chunks, into
// a slice of their type.
func decode(r io.Reader, h header) (any, error) {
	n := h.elems
	switch h.code {
	case "f4":
		return fill(r, h, make([]float32, n), func(b []byte) float32 { return math.Float32frombits(h.order.Uint32(b)) })
	case "f8":
		return fill(r, h, make([]float64, n), func(b []byte) float64 { return math.Float64frombits(h.order.Uint64(b)) })
	case "i1":
		return fill(r, h, make([]int8, n), func(b []byte) int8 { return int8(b[0]) })
	case "u1":
		return fill(r, h, make([]uint8, n), func(b []byte) uint8 { return b[0] })
	case "b1":
		return fill(r, h, make([]bool, n), func(b []byte) bool { return b[0] != 0 })
	case "i2":
		return fill(r, h, make([]int16, n), func(b []byte) int16 { return int16(h.order.Uint16(b)) })
	case "u2":
		return fill(r, h, make([]uint16, n), func(b []byte) uint16 { return h.order.Uint16(b) })
	case "i4":
		return fill(r, h, make([]int32, n), func(b []byte) int32 { return int32(h.order.Uint32(b)) })
	case "u4":
		return fill(r, h, make([]uint32, n), func(b []byte) uint32 { return h.order.Uint32(b) })
	case "i8":
		return fill(r, h, make([]int64, n), func(b []byte) int64 { return int64(h.order.Uint64(b)) })
	case "u8":
		return fill(r, h, make([]uint64, n), func(b []byte) uint64 { return h.order.Uint64(b) })
	}
	return nil, fmt.Errorf("unsupported dtype %s", h.dtype)
}

// fill reads len(out) values of h.size bytes each from r.
func fill[T any](r io.Reader, h header, out []T, conv func([]byte) T) ([]T, error) {
	buf := make([]byte, min(len(out)*h.size, 1<<20))
	for done := 0; done < len(out); {
		k := min(len(buf)/h.size, len(out)-done)
		b := buf[:k*h.size]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("reading %s values: %w", h.dtype, err)
		}
		for i := range k {
			out[done+i] = conv(b[i*h.size:])
		}
		done += k
	}
	return out, nil
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
	buf := make([]byte, 0, len(labels)*8+128)
	buf = appendHeader(buf, "<i8", fmt.Sprintf("(%d,)", len(labels)))
	for _, y := range labels {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(int64(y)))
	}
	return atomicfile.Write(path, buf)
}
