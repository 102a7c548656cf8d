package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestRealMNISTFamily reads the real MNIST and Fashion-MNIST from wherever
// the packages put them. Locally they may be absent; CI installs both and
// sets SINCERE_REQUIRE_DATA=1, so there a missing copy fails the test.
func TestRealMNISTFamily(t *testing.T) {
	for _, name := range []string{"mnist", "fashion-mnist"} {
		n, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		loc := n.Locate("")
		if !loc.Found() {
			if os.Getenv("SINCERE_REQUIRE_DATA") != "" {
				t.Fatalf("%s: %v", name, n.Missing(""))
			}
			t.Logf("%s not installed here, skipped: %v", name, n.Missing(""))
			continue
		}
		status, err := n.Verify(loc)
		if err != nil || status != "verified" {
			t.Fatalf("%s in %s: %s, %v", name, loc.Dir, status, err)
		}
		for _, train := range []bool{true, false} {
			d, err := n.Load(context.Background(), loc, train)
			if err != nil {
				t.Fatal(err)
			}
			want, wantCounts := n.Test, n.TestCounts
			if train {
				want, wantCounts = n.Train, n.TrainCounts
			}
			if d.Len() != want {
				t.Fatalf("%s train=%v: %d images, want %d", name, train, d.Len(), want)
			}
			got := d.ClassCounts()
			for c := range wantCounts {
				if got[c] != wantCounts[c] {
					t.Fatalf("%s train=%v: class counts %v, published %v", name, train, got, wantCounts)
				}
			}
			t.Logf("%s (%s, %s) train=%v: %d images, class counts %v", name, loc.Source, loc.Dir, train, d.Len(), got)
		}
	}
}

func TestRegistryIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range Registry() {
		if seen[n.Name] {
			t.Errorf("%s registered twice", n.Name)
		}
		seen[n.Name] = true
		if n.load == nil || n.Classes < 1 || n.Train < 1 || n.C < 1 {
			t.Errorf("%s: incomplete entry", n.Name)
		}
		sum := func(c []int) (s int) {
			for _, v := range c {
				s += v
			}
			return
		}
		if n.TrainCounts != nil && (sum(n.TrainCounts) != n.Train || sum(n.TestCounts) != n.Test || len(n.TrainCounts) != n.Classes) {
			t.Errorf("%s: published class counts do not add up", n.Name)
		}
		for _, dl := range n.downloads {
			if len(dl.sha256) != 64 || len(dl.urls) == 0 || dl.size <= 0 {
				t.Errorf("%s: download %s lacks a checksum, address or size", n.Name, dl.file)
			}
		}
	}
	for _, want := range []string{"mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic"} {
		if !seen[want] {
			t.Errorf("%s missing from the registry", want)
		}
	}
	if _, err := Lookup("imagenet"); err == nil {
		t.Error("Lookup(imagenet) succeeded")
	}
	if loc := mustLookup(t, "synthetic").Locate(""); loc.Source != "generated" {
		t.Errorf("synthetic located as %+v", loc)
	}
}

func mustLookup(t *testing.T, name string) *Named {
	t.Helper()
	n, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeIDXSet is a named data set over tiny IDX files with known checksums,
// downloadable from base.
func fakeIDXSet(t *testing.T, base string) (*Named, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	tinyIDX(t, dir, 6, false)
	n := &Named{Name: "tiny", Classes: 3, Train: 6, Test: 6, C: 1, H: 4, W: 3, Folder: "tiny",
		load: loadIDX("tiny", []string{"a", "b", "c"}, 6, 6, 4, 3)}
	served := map[string][]byte{}
	for _, f := range idxFiles {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		z := gz(raw)
		served["/"+f+".gz"] = z
		n.files = append(n.files, dataFile{f, sha(raw)})
		n.downloads = append(n.downloads, download{file: f + ".gz", urls: []string{base + "/missing/" + f + ".gz", base + "/" + f + ".gz"}, sha256: sha(z), size: int64(len(z))})
	}
	return n, served
}

func serve(files map[string][]byte) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
}

// servedIDXSet serves fakeIDXSet's files as published; close the server.
func servedIDXSet(t *testing.T) (*httptest.Server, *Named) {
	t.Helper()
	files := map[string][]byte{}
	srv := serve(files)
	n, served := fakeIDXSet(t, srv.URL)
	for k, v := range served {
		files[k] = v
	}
	return srv, n
}

func TestFetchVerifyLoad(t *testing.T) {
	srv, n := servedIDXSet(t)
	defer srv.Close()
	root := t.TempDir()
	if loc := n.Locate(root); loc.Found() {
		t.Fatalf("found before fetching: %+v", loc)
	}
	if err := n.Missing(root); !strings.Contains(err.Error(), "sincere data fetch tiny") {
		t.Errorf("missing message: %v", err)
	}
	var progressed int64
	f := &Fetcher{Progress: func(file string, done, total int64) { progressed = max(progressed, done) }}
	if err := f.Fetch(context.Background(), n, root); err != nil {
		t.Fatal(err)
	}
	if progressed == 0 {
		t.Error("no progress reported")
	}
	loc := n.Locate(root)
	if loc.Source != "data root" {
		t.Fatalf("after fetch: %+v", loc)
	}
	if status, err := n.Verify(loc); err != nil || status != "verified" {
		t.Fatalf("verify: %s %v", status, err)
	}
	d, err := n.Load(context.Background(), loc, true)
	if err != nil || d.Len() != 6 {
		t.Fatalf("load: %v %v", d, err)
	}
	// Corrupt a file on disk: Verify and Load name it.
	p := filepath.Join(loc.Dir, idxFiles[1]+".gz")
	raw := writeIDX([]int{6}, []byte{0, 1, 2, 0, 1, 1})
	os.WriteFile(p, gz(raw), 0o644)
	if _, err := n.Load(context.Background(), loc, true); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt file: %v", err)
	}
	entries, _ := os.ReadDir(loc.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("fetch left %s behind", e.Name())
		}
	}
}

func TestFetchWrongChecksumLeavesNothing(t *testing.T) {
	files := map[string][]byte{}
	srv := serve(files)
	defer srv.Close()
	n, served := fakeIDXSet(t, srv.URL)
	for k, v := range served {
		files[k] = append(append([]byte(nil), v[:len(v)-1]...), v[len(v)-1]^0xff) // same size, wrong bytes
	}
	root := t.TempDir()
	err := (&Fetcher{}).Fetch(context.Background(), n, root)
	if err == nil || !strings.Contains(err.Error(), "SHA-256") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("wrong checksum (and a 404 on the first mirror): %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "tiny"))
	if len(entries) != 0 {
		t.Errorf("a failed fetch left %d files", len(entries))
	}
	// A short download is an error too.
	for k, v := range served {
		files[k] = v[:len(v)/2]
	}
	if err := (&Fetcher{}).Fetch(context.Background(), n, root); err == nil || !strings.Contains(err.Error(), "published") {
		t.Errorf("short download: %v", err)
	}
}

func TestFetchArchiveAndLocalFile(t *testing.T) {
	// A CIFAR-10-like archive with one test batch.
	var tgz bytes.Buffer
	gw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gw)
	members := map[string][]byte{
		"top/batches.meta.txt": []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"),
		"top/test_batch.bin":   cifarRecords(3, 1, func(i int) []byte { return []byte{byte(i)} }),
		"top/unrelated.txt":    []byte("skip me"),
	}
	for _, name := range []string{"top/batches.meta.txt", "top/test_batch.bin", "top/unrelated.txt"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(members[name])), Typeflag: tar.TypeReg})
		tw.Write(members[name])
	}
	tw.Close()
	gw.Close()
	archive := tgz.Bytes()
	n := &Named{Name: "tinycifar", Classes: 10, Train: 3, Test: 3, C: 3, H: 32, W: 32, Folder: "tinycifar",
		files:     []dataFile{{name: "batches.meta.txt"}, {name: "test_batch.bin"}},
		downloads: []download{{file: "t.tar.gz", urls: []string{"http://127.0.0.1:1/unreachable"}, sha256: sha(archive), size: int64(len(archive)), members: []string{"top/batches.meta.txt", "top/test_batch.bin"}}},
		load: func(ctx context.Context, dir string, train bool) (*Dataset, fileSums, error) {
			return readCIFARFiles(ctx, "tinycifar", []string{filepath.Join(dir, "test_batch.bin")}, cifar10Rec, 0, 3, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})
		}}
	local := write(t, filepath.Join(t.TempDir(), "t.tar.gz"), archive)
	root := t.TempDir()
	if err := (&Fetcher{Local: []string{local}}).Fetch(context.Background(), n, root); err != nil {
		t.Fatal(err)
	}
	loc := n.Locate(root)
	status, err := n.Verify(loc)
	if err != nil || status != "verified" {
		t.Fatalf("verify: %s %v", status, err)
	}
	if _, err := os.Stat(filepath.Join(loc.Dir, "unrelated.txt")); err == nil {
		t.Error("extracted a member not asked for")
	}
	if d, err := n.Load(context.Background(), loc, false); err != nil || d.Len() != 3 {
		t.Fatalf("load: %v %v", d, err)
	}
	// Without SHA256SUMS (a copy extracted by hand) the copy is unverified.
	os.Remove(filepath.Join(loc.Dir, sumsFile))
	if status, err := n.Verify(loc); err != nil || status != "unverified" {
		t.Errorf("without sums: %s %v", status, err)
	}
}
