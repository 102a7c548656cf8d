package dataset

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeIDX encodes data with the given dimensions as an IDX file of bytes.
func writeIDX(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func write(t *testing.T, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tinyIDX writes an MNIST-like folder of n 4x3 images with labels i % 3.
func tinyIDX(t *testing.T, dir string, n int, gzipped bool) {
	t.Helper()
	pix := make([]byte, n*12)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	lab := make([]byte, n)
	for i := range lab {
		lab[i] = byte(i % 3)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{idxFiles[0], writeIDX([]int{n, 4, 3}, pix)}, {idxFiles[1], writeIDX([]int{n}, lab)},
		{idxFiles[2], writeIDX([]int{n, 4, 3}, pix)}, {idxFiles[3], writeIDX([]int{n}, lab)},
	} {
		if gzipped {
			write(t, filepath.Join(dir, f.name+".gz"), gz(f.b))
		} else {
			write(t, filepath.Join(dir, f.name), f.b)
		}
	}
}

func TestIDXPlainAndGzipped(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := t.TempDir()
		tinyIDX(t, dir, 5, gzipped)
		d, _, err := loadIDX("tiny", []string{"a", "b", "c"}, 5, 5, 4, 3)(context.Background(), dir, true)
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != 5 || d.H != 4 || d.W != 3 || d.C != 1 || d.Labels[4] != 1 || d.Image(1)[0] != byte(12*7) {
			t.Fatalf("gzipped=%v: %+v", gzipped, d)
		}
	}
}

func TestIDXCorruptFilesNameTheFile(t *testing.T) {
	good := writeIDX([]int{2, 2, 2}, make([]byte, 8))
	cases := []struct {
		name, want string
		b          []byte
	}{
		{"bad.idx", "bad IDX magic", append([]byte{0, 0, 9, 3}, good[4:]...)},
		{"short.idx", "truncated", good[:len(good)-1]},
		{"header.idx", "truncated IDX header", good[:6]},
		{"long.idx", "trailing data", append(append([]byte(nil), good...), 1)},
		{"zero.idx", "want [2 2 2]", writeIDX([]int{0, 2, 2}, nil)},
		{"huge.idx.gz", "want [2 2 2]", gz(writeIDX([]int{65536, 65535, 1}, nil))},
		{"notgz.idx.gz", "not a gzip file", good},
		{"cut.idx.gz", "truncated", gz(good)[:20]},
	}
	for _, c := range cases {
		p := write(t, filepath.Join(t.TempDir(), c.name), c.b)
		_, _, err := readIDX(context.Background(), p, []int{2, 2, 2})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and %q", c.name, err, c.want)
		}
	}
	// Labels that do not match the images.
	dir := t.TempDir()
	tinyIDX(t, dir, 5, false)
	write(t, filepath.Join(dir, idxFiles[1]), writeIDX([]int{4}, make([]byte, 4)))
	if _, _, err := loadIDX("tiny", []string{"a", "b", "c"}, 5, 5, 4, 3)(context.Background(), dir, true); err == nil || !strings.Contains(err.Error(), "want [5]") {
		t.Errorf("label count mismatch: %v", err)
	}
	write(t, filepath.Join(dir, idxFiles[1]), writeIDX([]int{5}, []byte{0, 1, 2, 7, 0}))
	if _, _, err := loadIDX("tiny", []string{"a", "b", "c"}, 5, 5, 4, 3)(context.Background(), dir, true); err == nil || !strings.Contains(err.Error(), "label 7") {
		t.Errorf("label out of range: %v", err)
	}
}

// cifarRecords builds n CIFAR records; labelBytes is 1 (CIFAR-10) or 2.
func cifarRecords(n, labelBytes int, label func(i int) []byte) []byte {
	var b []byte
	for i := range n {
		b = append(b, label(i)[:labelBytes]...)
		px := make([]byte, cifarPixels)
		px[0], px[1024], px[2048] = byte(i), byte(i+1), byte(i+2) // first pixel of each plane
		b = append(b, px...)
	}
	return b
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	names := "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
	write(t, filepath.Join(dir, "batches.meta.txt"), []byte(names))
	for i := 1; i <= 5; i++ {
		write(t, filepath.Join(dir, "data_batch_"+string(rune('0'+i))+".bin"), cifarRecords(3, 1, func(j int) []byte { return []byte{byte(j + i)} }))
	}
	write(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(4, 1, func(j int) []byte { return []byte{9} }))
	tr, _, err := loadCIFAR10(context.Background(), dir, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 15 || tr.C != 3 || tr.Labels[0] != 1 || tr.Classes[9] != "truck" || tr.Image(2)[1024] != 3 {
		t.Fatalf("train: %d images, labels %v", tr.Len(), tr.Labels)
	}
	te, _, err := loadCIFAR10(context.Background(), dir, false, 4)
	if err != nil || te.Len() != 4 || te.Labels[3] != 9 {
		t.Fatalf("test: %v %v", te, err)
	}
	p := write(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(4, 1, func(j int) []byte { return []byte{9} })[:100])
	if _, _, err := loadCIFAR10(context.Background(), dir, false, 4); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated batch: %v", err)
	}
	write(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(1, 1, func(j int) []byte { return []byte{10} }))
	if _, _, err := loadCIFAR10(context.Background(), dir, false, 1); err == nil || !strings.Contains(err.Error(), "label 10") {
		t.Errorf("label 10: %v", err)
	}
}

func TestCIFAR100FineAndCoarse(t *testing.T) {
	dir := t.TempDir()
	var fine, coarse []string
	for i := range 100 {
		fine = append(fine, "f"+string(rune('A'+i%26))+string(rune('a'+i/26)))
	}
	for i := range 20 {
		coarse = append(coarse, "c"+string(rune('a'+i)))
	}
	write(t, filepath.Join(dir, "fine_label_names.txt"), []byte(strings.Join(fine, "\n")))
	write(t, filepath.Join(dir, "coarse_label_names.txt"), []byte(strings.Join(coarse, "\n")))
	recs := cifarRecords(6, 2, func(j int) []byte { return []byte{byte(j % 20), byte(50 + j)} })
	write(t, filepath.Join(dir, "train.bin"), recs)
	write(t, filepath.Join(dir, "test.bin"), recs[:cifar100Rec])
	f, _, err := loadCIFAR100(context.Background(), dir, true, false, 6)
	if err != nil || f.Len() != 6 || f.Labels[5] != 55 || len(f.Classes) != 100 {
		t.Fatalf("fine: %v, %v", f, err)
	}
	c, _, err := loadCIFAR100(context.Background(), dir, true, true, 6)
	if err != nil || c.Labels[5] != 5 || len(c.Classes) != 20 || c.Image(4)[1024] != 5 {
		t.Fatalf("coarse: %v, %v", c, err)
	}
	write(t, filepath.Join(dir, "coarse_label_names.txt"), []byte("one\ntwo\n"))
	if _, _, err := loadCIFAR100(context.Background(), dir, true, true, 6); err == nil || !strings.Contains(err.Error(), "2 class names, want 20") {
		t.Errorf("short names file: %v", err)
	}
}

func TestImageFolder(t *testing.T) {
	root := t.TempDir()
	save := func(path string, c color.Color, w, h int, asJPEG bool) {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.Set(x, y, c)
			}
		}
		var b bytes.Buffer
		if asJPEG {
			jpeg.Encode(&b, img, &jpeg.Options{Quality: 100})
		} else {
			png.Encode(&b, img)
		}
		write(t, path, b.Bytes())
	}
	red, blue := color.RGBA{200, 10, 10, 255}, color.RGBA{10, 10, 200, 255}
	save(filepath.Join(root, "train", "roses", "a.png"), red, 40, 20, false)
	save(filepath.Join(root, "train", "roses", "b.JPG"), red, 17, 33, true)
	save(filepath.Join(root, "train", "violets", "c.png"), blue, 9, 9, false)
	write(t, filepath.Join(root, "train", "violets", "notes.txt"), []byte("ignored"))
	save(filepath.Join(root, "test", "violets", "d.png"), blue, 12, 12, false)
	trainDir, testDir, err := FolderSplits(root)
	if err != nil || testDir == "" {
		t.Fatalf("splits: %q %q %v", trainDir, testDir, err)
	}
	tr, err := LoadFolder(context.Background(), trainDir, 8, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 3 || tr.H != 8 || tr.C != 3 || tr.Classes[0] != "roses" || tr.Labels[2] != 1 {
		t.Fatalf("train: %d images, classes %v, labels %v", tr.Len(), tr.Classes, tr.Labels)
	}
	if r, b := tr.Image(0)[27], tr.Image(0)[128+27]; r < 190 || b > 20 {
		t.Errorf("red image has R %d, B %d", r, b)
	}
	te, err := LoadFolder(context.Background(), testDir, 8, 1, tr.Classes)
	if err != nil || te.Len() != 1 || te.Labels[0] != 1 || te.C != 1 {
		t.Fatalf("test: %v %v", te, err)
	}
	bad := write(t, filepath.Join(root, "train", "roses", "broken.png"), []byte("\x89PNG not really"))
	if _, err := LoadFolder(context.Background(), trainDir, 8, 3, nil); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("broken image: %v", err)
	}
	save(filepath.Join(root, "test", "tulips", "e.png"), red, 5, 5, false)
	if _, err := LoadFolder(context.Background(), testDir, 8, 3, []string{"roses", "violets"}); err == nil || !strings.Contains(err.Error(), "tulips") {
		t.Errorf("unknown test class: %v", err)
	}
}

func TestSyntheticIsDeterministicAndBalanced(t *testing.T) {
	o := SyntheticOptions{Classes: 4, Train: 40, Test: 8, C: 3, H: 8, W: 10, Seed: 7}
	a, err := Synthetic(o, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Synthetic(o, true)
	if !bytes.Equal(a.Pixels, b.Pixels) {
		t.Fatal("same options, different images")
	}
	te, _ := Synthetic(o, false)
	if bytes.Equal(te.Pixels, a.Pixels[:len(te.Pixels)]) {
		t.Error("test split repeats the training images")
	}
	for c, n := range a.ClassCounts() {
		if n != 10 {
			t.Errorf("class %d: %d images", c, n)
		}
	}
	if _, err := Synthetic(SyntheticOptions{Classes: 0}, true); err == nil {
		t.Error("zero classes accepted")
	}
}

func TestMeanStdAndFilters(t *testing.T) {
	d := &Dataset{Name: "t", Pixels: []byte{0, 255, 0, 255, 51, 51, 51, 51}, Labels: []int32{0, 1}, Classes: []string{"a", "b"}, C: 1, H: 2, W: 2}
	mean, std := d.MeanStd()
	if abs(mean[0]-0.35) > 1e-6 || abs(std[0]-0.3840573) > 1e-5 {
		t.Errorf("mean %v std %v", mean, std)
	}
	f, err := d.FilterClasses([]int{1})
	if err != nil || f.Len() != 1 || f.Labels[0] != 0 || f.Classes[0] != "b" || f.Image(0)[0] != 51 {
		t.Errorf("filter: %+v %v", f, err)
	}
	if _, err := d.FilterClasses([]int{2}); err == nil {
		t.Error("class 2 accepted")
	}
	if _, err := d.FilterClasses([]int{1, 1}); err == nil {
		t.Error("duplicate class accepted")
	}
}

func abs(v float32) float32 { return max(v, -v) }
