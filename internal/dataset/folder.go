package dataset

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoders for the image folders
	_ "image/png"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/image/draw"
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

// LoadFolder reads a folder of class sub-folders of PNG and JPEG images (the
// ImageFolder convention): class names are the sub-folder names in sorted
// order, unless classes is given (a test split then uses the training
// split's classes). Each image is resized so its shorter side is size, then
// centre-cropped to size x size, with channels 3 (RGB) or 1 (luminance).
// Files with other extensions are ignored; an image that does not decode is
// an error naming it.
func LoadFolder(dir string, size, channels int, classes []string) (*Dataset, error) {
	if size < 1 || (channels != 1 && channels != 3) {
		return nil, fmt.Errorf("image folder: want size >= 1 and 1 or 3 channels, got %d and %d", size, channels)
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
			if !f.IsDir() && imageExt(f.Name()) {
				items = append(items, item{filepath.Join(dir, c, f.Name()), int32(k)})
			}
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
	d := &Dataset{Name: dir, Classes: classes, C: channels, H: size, W: size,
		Pixels: make([]byte, len(items)*channels*size*size), Labels: make([]int32, len(items))}
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
	for i, it := range items {
		d.Labels[i] = it.label
		next <- i
	}
	close(next)
	wg.Wait()
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
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	src, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("%s: cannot decode image: %v", path, err)
	}
	b := src.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 {
		return fmt.Errorf("%s: empty image", path)
	}
	// Shorter side to size, then the centre size x size.
	w, h := size, size
	if b.Dx() > b.Dy() {
		w = max(size, b.Dx()*size/b.Dy())
	} else {
		h = max(size, b.Dy()*size/b.Dx())
	}
	scaled := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(scaled, scaled.Bounds(), src, b, draw.Src, nil)
	x0, y0 := (w-size)/2, (h-size)/2
	plane := size * size
	for y := range size {
		for x := range size {
			c := scaled.RGBAAt(x0+x, y0+y)
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
