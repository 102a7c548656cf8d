package dataset

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pngHeader is the start of a PNG whose IHDR claims w x h pixels: enough
// for a decoder to size its image, far too little to fill it.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	b.Write(make([]byte, 150)) // a 200-byte file in all
	return b.Bytes()
}

func savePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	write(t, path, b.Bytes())
}

// TestReadersCheckSizesFirst: a size a file claims is checked against a
// limit (the published shape, the file's real size, a pixel cap) before
// anything is allocated, and the error names the file and the limit.
func TestReadersCheckSizesFirst(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	savePNG(t, filepath.Join(root, "a", "ok.png"), 8, 8)
	bomb := write(t, filepath.Join(root, "b", "bomb.png"), pngHeader(100000, 100000))
	_, err := LoadFolder(ctx, root, 8, 1, nil)
	if err == nil || !strings.Contains(err.Error(), bomb) || !strings.Contains(err.Error(), "100000x100000") || !strings.Contains(err.Error(), "33554432") {
		t.Errorf("a 200-byte PNG claiming 100000 x 100000 pixels: %v", err)
	}
	// An extreme aspect ratio within the pixel cap loads (the old resize
	// made a 20000*size x size image first).
	os.Remove(bomb)
	savePNG(t, filepath.Join(root, "b", "thin.png"), 1, 20000)
	if d, err := LoadFolder(ctx, root, 64, 1, nil); err != nil || d.Len() != 2 {
		t.Errorf("a 1 x 20000 image: %v", err)
	}
	// An IDX header must announce the published shape, gzipped or not.
	for _, name := range []string{"big.idx.gz", "big.idx"} {
		b := writeIDX([]int{65536, 65535}, nil)
		if strings.HasSuffix(name, ".gz") {
			b = gz(b)
		}
		p := write(t, filepath.Join(t.TempDir(), name), b)
		if _, _, err := readIDX(ctx, p, []int{60000, 28, 28}); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "[60000 28 28]") {
			t.Errorf("%s claiming 65536 x 65535: %v", name, err)
		}
	}
	// A CIFAR file must have exactly the published size; a larger one is
	// not read.
	dir := t.TempDir()
	write(t, filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"))
	p := write(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(3, 1, func(int) []byte { return []byte{1} }))
	if _, _, err := loadCIFAR10(ctx, dir, false, 2); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "want 6146") {
		t.Errorf("a CIFAR file of 3 records where 2 are published: %v", err)
	}
	// A file that grows while read is not read past its size.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCIFAR10(ctx, dir, false, 2); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero as a CIFAR file: %v", err)
	}
	// A synthetic set's size is computed without overflow.
	if _, err := Synthetic(SyntheticOptions{Classes: 2, Train: 1 << 20, Test: 0, C: 64, H: 4096, W: 4096}, true); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a synthetic set of 2^20 x 64 x 4096 x 4096: %v", err)
	}
}

// TestLoadingOnlyRegularFiles: a FIFO among the data (x.png in a class
// folder, an IDX file) is refused at once instead of blocking the loader.
func TestLoadingOnlyRegularFiles(t *testing.T) {
	root := t.TempDir()
	savePNG(t, filepath.Join(root, "a", "ok.png"), 8, 8)
	savePNG(t, filepath.Join(root, "b", "ok.png"), 8, 8)
	fifo := filepath.Join(root, "b", "x.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	idx := t.TempDir()
	tinyIDX(t, idx, 5, false)
	os.Remove(filepath.Join(idx, idxFiles[0]))
	if err := syscall.Mkfifo(filepath.Join(idx, idxFiles[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() error{
		"folder": func() error { _, err := LoadFolder(context.Background(), root, 8, 1, nil); return err },
		"idx": func() error {
			_, _, err := loadIDX("tiny", []string{"a", "b", "c"}, 5, 5, 4, 3)(context.Background(), idx, true)
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- load() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "FIFO") {
				t.Errorf("%s with a FIFO: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still loading after 5 s: blocked on the FIFO", name)
		}
	}
}

// TestLoadingStopsWhenCancelled: every reader checks its context, so that a
// signal during loading ends the program at once rather than after it.
func TestLoadingStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := t.TempDir()
	for i := range 50 {
		savePNG(t, filepath.Join(root, "c"+string(rune('a'+i%2)), string(rune('a'+i/2))+".png"), 64, 64)
	}
	idx := t.TempDir()
	tinyIDX(t, idx, 5, true)
	cifar := t.TempDir()
	write(t, filepath.Join(cifar, "batches.meta.txt"), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"))
	write(t, filepath.Join(cifar, "test_batch.bin"), cifarRecords(3, 1, func(int) []byte { return []byte{1} }))
	for name, load := range map[string]func() error{
		"folder": func() error {
			_, _, err := Open(ctx, Spec{Name: FolderPrefix + root, Size: 16, Channels: 3})
			return err
		},
		"synthetic": func() error {
			_, _, err := Open(ctx, Spec{Name: "synthetic:3x64x64"})
			return err
		},
		"idx": func() error {
			_, _, err := loadIDX("tiny", []string{"a", "b", "c"}, 5, 5, 4, 3)(ctx, idx, true)
			return err
		},
		"cifar": func() error { _, _, err := loadCIFAR10(ctx, cifar, false, 3); return err },
	} {
		if err := load(); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "loading stopped") {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
	}
}

// TestFetchUsesTheGivenFile: --file is used even under another name (and
// checked), rather than ignored for the network; a file no download would
// use is an error.
func TestFetchUsesTheGivenFile(t *testing.T) {
	archive := []byte("not the published archive")
	n := &Named{Name: "one", Folder: "one", files: []dataFile{{name: "x.bin"}},
		downloads: []download{{file: "one.tar.gz", urls: []string{"http://127.0.0.1:1/unreachable"}, sha256: sha([]byte("the real one")), size: 12, members: []string{"x.bin"}}}}
	evil := write(t, filepath.Join(t.TempDir(), "evil.tar.gz"), archive)
	err := (&Fetcher{Local: []string{evil}}).Fetch(context.Background(), n, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), evil) || strings.Contains(err.Error(), "unreachable") {
		t.Errorf("fetch with --file evil.tar.gz: %v (want the file's check failing, no download)", err)
	}
	if err := CheckLocal([]*Named{n}, []string{evil}); err != nil {
		t.Errorf("the only file for a one-download set: %v", err)
	}
	mnist := mustLookup(t, "mnist")
	if err := CheckLocal([]*Named{mnist}, []string{evil}); err == nil || !strings.Contains(err.Error(), "evil.tar.gz") || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz") {
		t.Errorf("a file of no download of mnist: %v", err)
	}
	if err := CheckLocal([]*Named{mnist}, []string{"/x/train-images-idx3-ubyte.gz"}); err != nil {
		t.Errorf("a file named as a download: %v", err)
	}
}

// TestFetchCleansPartialDownloads: what an interrupted fetch left (a
// killed process's .part file, an extraction folder) is removed by the
// next fetch, and a cancelled fetch leaves nothing.
func TestFetchCleansPartialDownloads(t *testing.T) {
	root := t.TempDir()
	srv, n := servedIDXSet(t)
	defer srv.Close()
	dir := filepath.Join(root, n.Folder)
	write(t, filepath.Join(dir, "."+idxFiles[0]+".gz.part-123"), make([]byte, 1000))
	write(t, filepath.Join(dir, ".extract-9", "half.bin"), make([]byte, 10))
	if err := (&Fetcher{}).Fetch(context.Background(), n, root); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root2 := t.TempDir()
	if err := (&Fetcher{}).Fetch(ctx, n, root2); err == nil {
		t.Fatal("a cancelled fetch succeeded")
	}
	entries, _ = os.ReadDir(filepath.Join(root2, n.Folder))
	if len(entries) != 0 {
		t.Errorf("a cancelled fetch left %d entries", len(entries))
	}
}
