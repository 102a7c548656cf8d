// Package safetensors writes and reads the safetensors format (what
// PyTorch's safetensors.torch.load_file reads): an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte
// range, optional string metadata under "__metadata__", then the tensors'
// raw little-endian bytes, back to back. Only the dtypes a model export needs
// are supported: F32 and I64.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/sincere-ml/sincere/internal/atomicfile"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// Dtypes.
const (
	F32 = "F32"
	I64 = "I64"
)

// maxHeader bounds the JSON header a reader accepts (the format's own
// limit is 100 MB).
const maxHeader = 100 << 20

// Tensor is one named array: F32 (Float32) or I64 (Int64) values in
// row-major order, of the given shape (empty for a scalar).
type Tensor struct {
	Name    string
	Dtype   string
	Shape   []int
	Float32 []float32
	Int64   []int64
}

// check reports a tensor whose values do not fill its shape.
func (t Tensor) check() error {
	if t.Name == "" || t.Name == "__metadata__" {
		return fmt.Errorf("safetensors: bad tensor name %q", t.Name)
	}
	for _, s := range t.Shape {
		if s < 0 {
			return fmt.Errorf("safetensors: %s: negative dimension in %v", t.Name, t.Shape)
		}
	}
	n := -1 // a shape whose product overflows matches no values
	if p, ok := sizes.Product(math.MaxInt, t.Shape...); ok {
		n = int(p)
	}
	switch t.Dtype {
	case F32:
		if len(t.Float32) != n || t.Int64 != nil {
			return fmt.Errorf("safetensors: %s: %d float32 values for shape %v", t.Name, len(t.Float32), t.Shape)
		}
	case I64:
		if len(t.Int64) != n || t.Float32 != nil {
			return fmt.Errorf("safetensors: %s: %d int64 values for shape %v", t.Name, len(t.Int64), t.Shape)
		}
	default:
		return fmt.Errorf("safetensors: %s: unsupported dtype %q", t.Name, t.Dtype)
	}
	return nil
}

// entry is a tensor's header record.
type entry struct {
	Dtype       string `json:"dtype"`
	Shape       []int  `json:"shape"`
	DataOffsets [2]int `json:"data_offsets"`
}

// Encode returns the file's bytes: tensors in name order, the header padded
// with spaces to a multiple of 8 bytes so that the data is aligned.
func Encode(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	sorted := slices.Clone(tensors)
	slices.SortFunc(sorted, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var data bytes.Buffer
	for i, t := range sorted {
		if err := t.check(); err != nil {
			return nil, err
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return nil, fmt.Errorf("safetensors: tensor %s twice", t.Name)
		}
		begin := data.Len()
		var err error
		if t.Dtype == F32 {
			err = binary.Write(&data, binary.LittleEndian, t.Float32)
		} else {
			err = binary.Write(&data, binary.LittleEndian, t.Int64)
		}
		if err != nil {
			return nil, err
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = entry{Dtype: t.Dtype, Shape: shape, DataOffsets: [2]int{begin, data.Len()}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+data.Len())
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(append(out, h...), data.Bytes()...)
	return out, nil
}

// WriteFile writes the tensors to path atomically.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	b, err := Encode(tensors, metadata)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, b)
}

// Decode parses a file's bytes, checking every record against the data it
// claims before reading it; it returns the tensors in name order and the
// metadata.
func Decode(b []byte) ([]Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("safetensors: %d bytes, too short for the header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes in a file of %d", n, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header: %w", err)
	}
	data := b[8+n:]
	var meta map[string]string
	var out []Tensor
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: metadata: %w", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: %s: %w", name, err)
		}
		size := 4
		if e.Dtype == I64 {
			size = 8
		} else if e.Dtype != F32 {
			return nil, nil, fmt.Errorf("safetensors: %s: unsupported dtype %q", name, e.Dtype)
		}
		n, ok := sizes.Product(math.MaxInt32, e.Shape...)
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: %s: bad shape %v", name, e.Shape)
		}
		count := int(n)
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > len(data) || hi-lo != count*size {
			return nil, nil, fmt.Errorf("safetensors: %s: bytes [%d, %d) for %d values of %s in %d bytes of data", name, lo, hi, count, e.Dtype, len(data))
		}
		t := Tensor{Name: name, Dtype: e.Dtype, Shape: e.Shape}
		r := bytes.NewReader(data[lo:hi])
		if e.Dtype == F32 {
			t.Float32 = make([]float32, count)
			_ = binary.Read(r, binary.LittleEndian, t.Float32)
		} else {
			t.Int64 = make([]int64, count)
			_ = binary.Read(r, binary.LittleEndian, t.Int64)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	return out, meta, nil
}

// ReadFile reads and decodes a file.
func ReadFile(path string) ([]Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	t, m, err := Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, m, nil
}
