package safetensors

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeLayout(t *testing.T) {
	b, err := Encode([]Tensor{
		{Name: "n", Dtype: I64, Int64: []int64{3}},
		{Name: "a", Dtype: F32, Shape: []int{2}, Float32: []float32{1, -2}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	header := string(b[8 : 8+n])
	want := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"n":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}`
	if strings.TrimRight(header, " ") != want || n%8 != 0 {
		t.Errorf("header (%d bytes) %q, want %q padded to 8", n, header, want)
	}
	data := b[8+n:]
	if len(data) != 16 || math.Float32frombits(binary.LittleEndian.Uint32(data)) != 1 ||
		math.Float32frombits(binary.LittleEndian.Uint32(data[4:])) != -2 || binary.LittleEndian.Uint64(data[8:]) != 3 {
		t.Errorf("data % x", data)
	}
}

func TestRoundTrip(t *testing.T) {
	in := []Tensor{
		{Name: "encoder.conv1.weight", Dtype: F32, Shape: []int{2, 1, 3, 3}, Float32: make([]float32, 18)},
		{Name: "encoder.bn1.num_batches_tracked", Dtype: I64, Shape: []int{}, Int64: []int64{351}},
		{Name: "head.0.bias", Dtype: F32, Shape: []int{3}, Float32: []float32{0.5, float32(math.Inf(1)), -0}},
	}
	for i := range in[0].Float32 {
		in[0].Float32[i] = float32(i) / 7
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(path, in, map[string]string{"arch": "cnn"}); err != nil {
		t.Fatal(err)
	}
	out, meta, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Tensor{in[1], in[0], in[2]} // name order
	if !reflect.DeepEqual(out, want) || meta["arch"] != "cnn" {
		t.Errorf("read back %+v %v", out, meta)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Encode([]Tensor{{Name: "a", Dtype: F32, Shape: []int{3}, Float32: []float32{1}}}, nil); err == nil {
		t.Error("a tensor short of its shape was encoded")
	}
	if _, err := Encode([]Tensor{{Name: "a", Dtype: F32, Shape: []int{1 << 32, 1 << 32}}}, nil); err == nil {
		t.Error("a shape whose product overflows (to 0) was encoded without values")
	}
	if _, err := Encode([]Tensor{{Name: "a", Dtype: "BF16"}}, nil); err == nil {
		t.Error("an unsupported dtype was encoded")
	}
	if _, err := Encode([]Tensor{{Name: "a", Dtype: I64, Int64: []int64{1}}, {Name: "a", Dtype: I64, Int64: []int64{1}}}, nil); err == nil {
		t.Error("a name twice was encoded")
	}
	good, _ := Encode([]Tensor{{Name: "a", Dtype: F32, Shape: []int{2}, Float32: []float32{1, 2}}}, nil)
	huge := append([]byte{}, good...)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	bad := map[string][]byte{
		"empty":             nil,
		"truncated data":    good[:len(good)-1],
		"header past end":   huge,
		"not json":          append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, "{{{{"...),
		"offsets past data": []byte("\x40\x00\x00\x00\x00\x00\x00\x00" + `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}}        ` + "12345678"),
	}
	for name, b := range bad {
		if _, _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
