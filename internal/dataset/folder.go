package dataset

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoders for the image folders
	_ "image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/image/draw"

	"github.com/sincere-ml/sincere/internal/regfile"
	"github.com/sincere-ml/sincere/internal/sizes"
)

// FolderSplits reports which splits an image folder has: "train" and "test"
// sub-folders each holding class sub-folders, or class sub-folders directly
// (one split, "train").
func FolderSplits(root string) (train, test string, err error) {
	st, err := os.Stat(root)
	if err != nil {
		return "", "", err
	}
	if !st.IsDir() {
		return "", "", fmt.Errorf("%s: not a folder", root)
	}
	tr, te := filepath.Join(root, "train"), filepath.Join(root, "test")
	if isDir(tr) && isDir(te) {
		return tr, te, nil
	}
	return root, "", nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// imageExt reports whether a file name has an extension this package decodes.
func imageExt(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// maxImageFileBytes bounds one image file of a folder data set.
const maxImageFileBytes = 1 << 28

// LoadFolder reads a folder of class sub-folders of PNG and JPEG images (the
// ImageFolder convention): class names are the sub-folder names in sorted
// order, unless classes is given (a test split then uses the training
// split's classes). Each image is resized so its shorter side is size, then
// centre-cropped to size x size, with channels 3 (RGB) or 1 (luminance).
// Files with other extensions are ignored; an image that does not decode,
// that claims more than sizes.MaxImagePixels pixels, or that is not a
// regular file (a FIFO named x.png) is an error naming it. Loading stops
// when ctx ends.
func LoadFolder(ctx context.Context, dir string, size, channels int, classes []string) (*Dataset, error) {
	if size < 1 || size > sizes.MaxImageSide || (channels != 1 && channels != 3) {
		return nil, fmt.Errorf("image folder: want size 1 to %d and 1 or 3 channels, got %d and %d", sizes.MaxImageSide, size, channels)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if classes == nil {
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				classes = append(classes, e.Name())
			}
		}
		slices.Sort(classes)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("%s: no class sub-folders", dir)
	}
	type item struct {
		path  string
		label int32
	}
	var items []item
	for k, c := range classes {
		files, err := os.ReadDir(filepath.Join(dir, c))
		if errors.Is(err, os.ErrNotExist) {
			continue // a test split may lack a class
		}
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if f.IsDir() || !imageExt(f.Name()) {
				continue
			}
			p := filepath.Join(dir, c, f.Name())
			if t := f.Type(); !t.IsRegular() && t&fs.ModeSymlink == 0 {
				return nil, fmt.Errorf("%s: %w (%s); only regular files are read as images", p, regfile.ErrNotRegular, regfile.Kind(t))
			}
			items = append(items, item{p, int32(k)})
		}
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !slices.Contains(classes, e.Name()) {
			return nil, fmt.Errorf("%s: class folder %q is not among the training classes", dir, e.Name())
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no PNG or JPEG images in the class folders", dir)
	}
	total, err := sizes.Check(fmt.Sprintf("%s: %d images of %dx%dx%d", dir, len(items), channels, size, size), "bytes",
		sizes.MaxDatasetBytes, len(items), channels, size, size)
	if err != nil {
		return nil, err
	}
	d := &Dataset{Name: dir, Classes: classes, C: channels, H: size, W: size,
		Pixels: make([]byte, total), Labels: make([]int32, len(items))}
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = decodeInto(items[i].path, size, channels, d.Image(i))
			}
		}()
	}
feed:
	for i, it := range items {
		d.Labels[i] = it.label
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: loading stopped: %w", dir, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, firstError(errs)
	}
	return d, d.check()
}

func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// decodeInto decodes one image file, resizes and crops it to size x size and
// writes its channel planes into dst.
func decodeInto(path string, size, channels int, dst []byte) error {
	f, n, err := regfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if n > maxImageFileBytes {
		return fmt.Errorf("%s: %d bytes, more than the %d an image file may have", path, n, int64(maxImageFileBytes))
	}
	return decodeImage(f, path, size, channels, dst)
}

// decodeImage decodes an image from r, checking the size its header claims
// before decoding it, and writes the centre square of it, scaled to size x
// size, into dst as channel planes. The shorter side scaled to size and the
// centre size x size cut out is the same picture; scaling only the square
// keeps the memory to the decoded image and size x size.
func decodeImage(r io.ReadSeeker, path string, size, channels int, dst []byte) (err error) {
	defer func() {
		// The standard decoders are not known to panic; if one does, the
		// file is named rather than the program stopped with a trace.
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: the image decoder failed: %v (please report this file)", path, p)
		}
	}()
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return fmt.Errorf("%s: cannot decode image: %v", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 {
		return fmt.Errorf("%s: empty image", path)
	}
	if _, ok := sizes.Product(sizes.MaxImagePixels, cfg.Width, cfg.Height); !ok {
		return fmt.Errorf("%s: %dx%d pixels, more than the %d an image may have", path, cfg.Width, cfg.Height, sizes.MaxImagePixels)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	src, _, err := image.Decode(r)
	if err != nil {
		return fmt.Errorf("%s: cannot decode image: %v", path, err)
	}
	b := src.Bounds()
	if b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return fmt.Errorf("%s: decoded %dx%d pixels, the header says %dx%d", path, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	side := min(b.Dx(), b.Dy())
	sq := image.Rect(0, 0, side, side).Add(b.Min).Add(image.Pt((b.Dx()-side)/2, (b.Dy()-side)/2))
	scaled := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.CatmullRom.Scale(scaled, scaled.Bounds(), src, sq, draw.Src, nil)
	plane := size * size
	for y := range size {
		for x := range size {
			c := scaled.RGBAAt(x, y)
			if channels == 1 {
				dst[y*size+x] = color.GrayModel.Convert(c).(color.Gray).Y
				continue
			}
			dst[y*size+x] = c.R
			dst[plane+y*size+x] = c.G
			dst[2*plane+y*size+x] = c.B
		}
	}
	return nil
}
