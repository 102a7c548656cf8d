package dataset

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sincere-ml/sincere/internal/regfile"
)

// copyContent copies a file's content to w, decompressing a .gz file.
func copyContent(w io.Writer, r io.Reader, path string) error {
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("%s: not a gzip file: %v", path, err)
		}
		defer gz.Close()
		r = gz
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// Fetcher downloads named data sets into a data root.
type Fetcher struct {
	// Client makes the requests; nil means http.DefaultClient.
	Client *http.Client
	// Progress, if not nil, is told how many bytes of a file have arrived
	// (total is -1 when unknown).
	Progress func(file string, done, total int64)
	// Local lists files already on disk (a manually downloaded archive, say)
	// to use instead of downloading: a file is used for the download of the
	// same name, and a data set fetched from one download takes a file of
	// any name when it is the only one given. They are checked like
	// downloads, and a file that fails the check is an error: the network
	// is not tried instead.
	Local []string
}

// localFor returns the local file to use for dl of n, or "".
func (f *Fetcher) localFor(n *Named, dl download) string {
	for _, p := range f.Local {
		if filepath.Base(p) == dl.file {
			return p
		}
	}
	if len(n.downloads) == 1 && len(f.Local) == 1 {
		return f.Local[0]
	}
	return ""
}

// CheckLocal reports a local file that fetching sets would not use.
func CheckLocal(sets []*Named, files []string) error {
	f := &Fetcher{Local: files}
	for _, p := range files {
		var names []string
		used := false
		for _, n := range sets {
			for _, dl := range n.downloads {
				names = append(names, dl.file)
				used = used || f.localFor(n, dl) == p
			}
		}
		if !used {
			return fmt.Errorf("%s: not a file of %s (want one of %s)", p, setNames(sets), strings.Join(names, ", "))
		}
	}
	return nil
}

// setNames joins the names of data sets.
func setNames(sets []*Named) string {
	var names []string
	for _, n := range sets {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}

// cleanPartial removes what an interrupted fetch into dir left: partial
// downloads and extraction folders.
func cleanPartial(dir string) error {
	for _, pattern := range []string{".*.part-*", ".extract-*"} {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// Fetch brings the named data set into root/<folder>: every download is
// fetched (or taken from Local), checked against its SHA-256 and size, and
// moved into place (archives are extracted, with the SHA-256 of each
// extracted file recorded in SHA256SUMS). Nothing is left behind on failure
// but the files that were complete and checked.
func (f *Fetcher) Fetch(ctx context.Context, n *Named, root string) error {
	if len(n.downloads) == 0 {
		return fmt.Errorf("%s: nothing to fetch (it is generated)", n.Name)
	}
	dir := filepath.Join(root, n.Folder)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := cleanPartial(dir); err != nil {
		return err
	}
	for _, dl := range n.downloads {
		if err := f.fetchOne(ctx, n, dl, dir); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return nil
}

// fetchOne gets one download of n into dir.
func (f *Fetcher) fetchOne(ctx context.Context, n *Named, dl download, dir string) error {
	tmp, err := os.CreateTemp(dir, "."+dl.file+".part-*")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if err := f.obtain(ctx, n, dl, tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if len(dl.members) > 0 {
		return extract(ctx, tmp.Name(), dl, dir)
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, dl.file))
}

// obtain writes the checked content of dl to w, from a local file or the
// first mirror that serves it whole and intact.
func (f *Fetcher) obtain(ctx context.Context, n *Named, dl download, w *os.File) error {
	if p := f.localFor(n, dl); p != "" {
		src, _, err := regfile.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		return f.copyChecked(w, ctxReader{ctx, src}, dl, p, -1)
	}
	var errs []error
	for _, url := range dl.urls {
		err := f.download(ctx, url, dl, w)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
		if _, err := w.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := w.Truncate(0); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// download fetches url into w and checks it.
func (f *Fetcher) download(ctx context.Context, url string, dl download, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: %s", url, resp.Status)
	}
	return f.copyChecked(w, resp.Body, dl, url, resp.ContentLength)
}

// copyChecked copies r to w while hashing it, reporting progress, and fails
// unless the size and SHA-256 are the published ones.
func (f *Fetcher) copyChecked(w io.Writer, r io.Reader, dl download, from string, total int64) error {
	h := sha256.New()
	var done int64
	buf := make([]byte, 1<<20)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return werr
			}
			h.Write(buf[:k])
			done += int64(k)
			if f.Progress != nil {
				f.Progress(dl.file, done, total)
			}
			if dl.size > 0 && done > dl.size {
				return fmt.Errorf("%s: more than the published %d bytes", from, dl.size)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
	}
	if dl.size > 0 && done != dl.size {
		return fmt.Errorf("%s: %d bytes, the published file has %d", from, done, dl.size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != dl.sha256 {
		return fmt.Errorf("%s: SHA-256 %s, want %s", from, got, dl.sha256)
	}
	return nil
}

// extract unpacks the listed members of a checked .tar.gz archive into dir,
// flat, through a temporary folder, and writes their SHA-256 to SHA256SUMS.
func extract(ctx context.Context, archive string, dl download, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(ctxReader{ctx, f})
	if err != nil {
		return fmt.Errorf("%s: %v", dl.file, err)
	}
	defer gz.Close()
	staging, err := os.MkdirTemp(dir, ".extract-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	want := map[string]bool{}
	for _, m := range dl.members {
		want[m] = true
	}
	var sums strings.Builder
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %v", dl.file, err)
		}
		if !want[hdr.Name] || hdr.Typeflag != tar.TypeReg {
			continue
		}
		delete(want, hdr.Name)
		name := filepath.Base(hdr.Name)
		out, err := os.Create(filepath.Join(staging, name))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(out, h), tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %v", dl.file, hdr.Name, err)
		}
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), name)
	}
	if len(want) > 0 {
		var missing []string
		for m := range want {
			missing = append(missing, m)
		}
		return fmt.Errorf("%s: archive lacks %s", dl.file, strings.Join(missing, ", "))
	}
	if err := os.WriteFile(filepath.Join(staging, sumsFile), []byte(sums.String()), 0o644); err != nil {
		return err
	}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	// SHA256SUMS last: a copy counts as verified only once every file it
	// names is in place.
	for _, e := range entries {
		if e.Name() != sumsFile {
			if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return os.Rename(filepath.Join(staging, sumsFile), filepath.Join(dir, sumsFile))
}
