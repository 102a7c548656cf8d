package npyfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawNpy builds a version 1.0 .npy file by hand: the header dictionary for
// descr, fortran order and shape, padded to 64 bytes, then data.
func rawNpy(descr string, fortran bool, shape string, data []byte) []byte {
	order := "False"
	if fortran {
		order = "True"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, order, shape)
	for (10+len(dict)+1)%64 != 0 {
		dict += " "
	}
	return rawDict(dict, data)
}

func bytesOf(order binary.ByteOrder, v any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, order, v); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWriteThenReadMatrix(t *testing.T) {
	p := filepath.Join(t.TempDir(), "g.npy")
	want := []float32{1, -2, 3.5, 4, 5, float32(math.Pi)}
	if err := WriteMatrix(p, want, 2, 3); err != nil {
		t.Fatal(err)
	}
	got, r, c, err := ReadMatrix(p)
	if err != nil {
		t.Fatal(err)
	}
	if r != 2 || c != 3 {
		t.Fatalf("shape %d x %d, want 2 x 3", r, c)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d: %v, want %v", i, got[i], want[i])
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the output", len(entries))
	}
}

func TestReadMatrixLayouts(t *testing.T) {
	vals := []float64{1, 2, 3, 4, 5, 6} // (2, 3) row-major
	fortran := []float64{1, 4, 2, 5, 3, 6}
	cases := []struct {
		name string
		file []byte
	}{
		{"float64 C order", rawNpy("<f8", false, "(2, 3)", bytesOf(binary.LittleEndian, vals))},
		{"float64 Fortran order", rawNpy("<f8", true, "(2, 3)", bytesOf(binary.LittleEndian, fortran))},
		{"float32 big-endian", rawNpy(">f4", false, "(2, 3)", bytesOf(binary.BigEndian, []float32{1, 2, 3, 4, 5, 6}))},
	}
	for _, c := range cases {
		got, r, cols, err := ReadMatrix(writeFile(t, "z.npy", c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r != 2 || cols != 3 {
			t.Fatalf("%s: shape %d x %d", c.name, r, cols)
		}
		for i, v := range vals {
			if float64(got[i]) != v {
				t.Fatalf("%s: value %d is %v, want %v", c.name, i, got[i], v)
			}
		}
	}
}

func TestReadLabelsEveryIntegerType(t *testing.T) {
	want := []int{3, 0, 7, 1}
	types := []struct {
		descr string
		data  any
	}{
		{"|i1", []int8{3, 0, 7, 1}},
		{"|u1", []uint8{3, 0, 7, 1}},
		{"<i2", []int16{3, 0, 7, 1}},
		{"<u2", []uint16{3, 0, 7, 1}},
		{"<i4", []int32{3, 0, 7, 1}},
		{"<u4", []uint32{3, 0, 7, 1}},
		{"<i8", []int64{3, 0, 7, 1}},
		{"<u8", []uint64{3, 0, 7, 1}},
		{">i8", []int64{3, 0, 7, 1}},
	}
	for _, ty := range types {
		order := binary.ByteOrder(binary.LittleEndian)
		if ty.descr[0] == '>' {
			order = binary.BigEndian
		}
		got, err := ReadLabels(writeFile(t, "y.npy", rawNpy(ty.descr, false, "(4,)", bytesOf(order, ty.data))))
		if err != nil {
			t.Fatalf("%s: %v", ty.descr, err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: label %d is %d, want %d", ty.descr, i, got[i], want[i])
			}
		}
	}
}

func TestBadFiles(t *testing.T) {
	good := rawNpy("<f4", false, "(2, 2)", bytesOf(binary.LittleEndian, []float32{1, 2, 3, 4}))
	labels := rawNpy("<i8", false, "(2,)", bytesOf(binary.LittleEndian, []int64{1, 2}))
	cases := []struct {
		name, want string
		file       []byte
		labels     bool
	}{
		{"empty", "bad magic", nil, false},
		{"text", "bad magic", []byte("hello, this is not numpy at all"), false},
		{"truncated data", "truncated", good[:len(good)-3], false},
		{"truncated header", "truncated", good[:20], false},
		{"trailing data", "trailing", append(append([]byte(nil), good...), 0, 0, 0, 0), false},
		{"1-D embeddings", "2-D", labels, false},
		{"int embeddings", "float32 or float64", rawNpy("<i4", false, "(1, 2)", bytesOf(binary.LittleEndian, []int32{1, 2})), false},
		{"string dtype", "unsupported dtype", rawNpy("<U3", false, "(2,)", make([]byte, 24)), false},
		{"huge shape", "implausible shape", rawNpy("<f4", false, "(4000000000, 4000000000)", nil), false},
		{"header without keys", "malformed", []byte("\x93NUMPY\x01\x00\x0b\x00{'foo': 1}\n"), false},
		{"header without newline", "malformed", []byte("\x93NUMPY\x01\x00\x0a\x00{'foo': 1}"), false},
		{"newer version", "unsupported .npy version", []byte("\x93NUMPY\x09\x00\x0a\x00{'foo': 1}"), false},
		{"float labels", "integer dtype", rawNpy("<f8", false, "(2,)", bytesOf(binary.LittleEndian, []float64{1, 2})), true},
		{"bool labels", "integer dtype", rawNpy("|b1", false, "(2,)", []byte{0, 1}), true},
		{"2-D labels", "1-D", good, true},
		{"uint64 overflow", "does not fit", rawNpy("<u8", false, "(1,)", bytesOf(binary.LittleEndian, []uint64{math.MaxUint64})), true},
		{"float64 overflows float32", "overflows float32", rawNpy("<f8", false, "(1, 1)", bytesOf(binary.LittleEndian, []float64{1e300})), false},
	}
	for _, c := range cases {
		p := writeFile(t, "bad.npy", c.file)
		var err error
		if c.labels {
			_, err = ReadLabels(p)
		} else {
			_, _, _, err = ReadMatrix(p)
		}
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, p) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q should be one line naming the file and %q", c.name, msg, c.want)
		}
	}
	if _, _, _, err := ReadMatrix(filepath.Join(t.TempDir(), "missing.npy")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestWriteMatrixLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	if err := WriteMatrix(filepath.Join(dir, "no-such-dir", "g.npy"), []float32{1}, 1, 1); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	if err := WriteMatrix(filepath.Join(dir, "g.npy"), []float32{1, 2}, 1, 1); err == nil {
		t.Fatal("wrong shape accepted")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed writes left %d files behind", len(entries))
	}
}

// FuzzRead checks that no byte string makes the readers panic.
func FuzzRead(f *testing.F) {
	f.Add(rawNpy("<f4", false, "(2, 2)", make([]byte, 16)))
	f.Add(rawNpy("<i8", false, "(3,)", make([]byte, 24)))
	f.Add(rawNpy("<f8", true, "(1, 2)", make([]byte, 16)))
	f.Add([]byte("\x93NUMPY\x01\x00\x05\x00{}\n  "))
	f.Add([]byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"))
	f.Add(rawNpy("<f4", true, "(9000000000000000000, 0)", nil))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f.npy")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ReadMatrix(p)
		ReadLabels(p)
	})
}

func TestWriteThenReadLabels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "y.npy")
	want := []int{3, 0, -1, 1 << 40}
	if err := WriteLabels(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLabels(path)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("read back %v, %v", got, err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte("'descr': '<i8'")) {
		t.Errorf("header %q is not int64", b[:64])
	}
}

// TestWriteMatrixIsNumPys checks the header byte for byte against what
// numpy.save writes for the same array (version 1.0, padded to 64 bytes).
func TestWriteMatrixIsNumPys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.npy")
	if err := WriteMatrix(path, make([]float32, 7*16), 7, 16); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (7, 16), }"
	want := "\x93NUMPY\x01\x00\x76\x00" + dict + strings.Repeat(" ", 128-10-len(dict)-1) + "\n"
	if len(b) != 128+7*16*4 || string(b[:128]) != want {
		t.Errorf("header %q (%d bytes in all), want %q", b[:min(len(b), 128)], len(b), want)
	}
}

// rawDict builds a version 1.0 .npy file from a header dictionary as given
// (a newline is added).
func rawDict(dict string, data []byte) []byte {
	dict += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	b.WriteString(dict)
	b.Write(data)
	return b.Bytes()
}

// TestHeaderAsNumPyReadsIt: any header NumPy accepts is read as NumPy
// reads it (keys in any order, any spacing, a space before the brace, a
// Python 2 long), and one it would refuse is an error, never a misread.
func TestHeaderAsNumPyReadsIt(t *testing.T) {
	data := bytesOf(binary.LittleEndian, make([]float32, 32))
	for _, dict := range []string{
		"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4) }",
		"{'shape': (8, 4), 'descr': '<f4', 'fortran_order': False}",
		"{ 'descr' : \"<f4\" ,'fortran_order':False,'shape':( 8 ,4 , ) , }",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (8L, 4L), }",
	} {
		_, r, c, err := ReadMatrix(writeFile(t, "z.npy", rawDict(dict, data)))
		if err != nil || r != 8 || c != 4 {
			t.Errorf("%s: shape %d x %d, %v; want 8 x 4", dict, r, c, err)
		}
	}
	for _, dict := range []string{
		"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4), 'extra': 1}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (32), }",
		"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (8, 4)}",
		"{'descr': '<f4', 'fortran_order': 0, 'shape': (8, 4)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (8, -4)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4)} trailing",
		"{'descr': '<c8', 'fortran_order': False, 'shape': (8, 2)}",
	} {
		if _, _, _, err := ReadMatrix(writeFile(t, "z.npy", rawDict(dict, data))); err == nil {
			t.Errorf("%s: accepted", dict)
		}
	}
}

// TestReadOnlyRegularFiles: a device, a FIFO or a folder is refused at
// once (no endless read of /dev/zero, no wait for a FIFO's writer), and a
// header larger than the limit is refused before it is read.
func TestReadOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "z.npy")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	for _, p := range []string{"/dev/zero", fifo, dir} {
		done := make(chan error, 1)
		go func() { _, _, _, err := ReadMatrix(p); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still reading after 5 s", p)
		}
	}
	big := []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f{")
	if _, _, _, err := ReadMatrix(writeFile(t, "big.npy", big)); err == nil || !strings.Contains(err.Error(), "65536") {
		t.Errorf("a 2 GiB header: %v", err)
	}
}
