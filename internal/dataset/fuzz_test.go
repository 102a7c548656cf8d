package dataset

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzIDX: no byte string makes the IDX reader panic or allocate more
// than the shape it was asked for.
func FuzzIDX(f *testing.F) {
	f.Add(writeIDX([]int{2, 2, 2}, make([]byte, 8)), uint8(2), uint8(2), uint8(2))
	f.Add(writeIDX([]int{3}, []byte{0, 1, 2}), uint8(3), uint8(0), uint8(0))
	f.Add(writeIDX([]int{65536, 65535, 1}, nil), uint8(1), uint8(1), uint8(1))
	f.Add([]byte{0, 0, 8, 4, 0xff, 0xff, 0xff, 0xff}, uint8(1), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, n, h, w uint8) {
		want := []int{int(n)}
		if h > 0 || w > 0 {
			want = append(want, int(h), int(w))
		}
		data, err := parseIDX(bytes.NewReader(b), "f.idx", want)
		if err == nil {
			size := 1
			for _, d := range want {
				size *= d
			}
			if len(data) != size {
				t.Fatalf("%d bytes for dimensions %v", len(data), want)
			}
		}
	})
}

// FuzzCIFAR: no file content makes the CIFAR reader panic; what it accepts
// has the size and labels it promises.
func FuzzCIFAR(f *testing.F) {
	f.Add(cifarRecords(2, 1, func(i int) []byte { return []byte{byte(i)} }), uint8(2))
	f.Add(cifarRecords(1, 1, func(i int) []byte { return []byte{10} }), uint8(1))
	f.Add([]byte("short"), uint8(1))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, records uint8) {
		if err := os.WriteFile(filepath.Join(dir, "test_batch.bin"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		d, _, err := loadCIFAR10(context.Background(), dir, false, int(records))
		if err == nil {
			if d.Len() != int(records) || len(d.Pixels) != int(records)*cifarPixels {
				t.Fatalf("%d images, %d bytes of pixels for %d records", d.Len(), len(d.Pixels), records)
			}
			for _, y := range d.Labels {
				if y < 0 || y >= 10 {
					t.Fatalf("label %d", y)
				}
			}
		}
	})
}

// FuzzImage: no file content makes the image-folder decoder panic or
// allocate what a header claims beyond the pixel cap.
func FuzzImage(f *testing.F) {
	var pngSeed bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 13)
	}
	if err := png.Encode(&pngSeed, img); err != nil {
		f.Fatal(err)
	}
	var jpegSeed bytes.Buffer
	if err := jpeg.Encode(&jpegSeed, img, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(pngSeed.Bytes(), uint8(4), true)
	f.Add(jpegSeed.Bytes(), uint8(7), false)
	f.Add(pngHeader(100000, 100000), uint8(4), true)
	f.Add(pngHeader(1, 30000), uint8(4), false)
	f.Fuzz(func(t *testing.T, b []byte, size uint8, rgb bool) {
		s, c := int(size%64)+1, 1
		if rgb {
			c = 3
		}
		dst := make([]byte, c*s*s)
		// decodeImage turns a decoder's panic into an error; here it
		// must not happen at all.
		if err := decodeImage(bytes.NewReader(b), "f.png", s, c, dst); err != nil && strings.Contains(err.Error(), "decoder failed") {
			t.Fatal(err)
		}
	})
}
