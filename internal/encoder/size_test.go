package encoder

import (
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
)

// TestParamCountMatchesNew: the shape-only count is what New allocates,
// and New refuses a model beyond MaxParams before allocating it.
func TestParamCountMatchesNew(t *testing.T) {
	dev, err := cpu.NewDevice(kernels.CPUOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg     Config
		in      [3]int
		head    string
		classes int
	}{
		{Config{Arch: ArchMLP, Width: 0.25, Embedding: 16}, [3]int{1, 6, 5}, HeadProjection, 0},
		{Config{Arch: ArchCNN, Width: 0.5, HeadHidden: 7, Embedding: 8}, [3]int{3, 8, 8}, HeadProjection, 0},
		{Config{Arch: ArchCNN, Width: 1, Embedding: 8}, [3]int{1, 8, 8}, HeadClassifier, 10},
		{Config{Arch: ArchResNet18, Width: 0.125, Embedding: 4}, [3]int{3, 8, 8}, HeadProjection, 0},
		{Config{Arch: ArchResNet18, Width: 0.25, Embedding: 4}, [3]int{3, 8, 8}, HeadClassifier, 3},
		{Config{Arch: ArchResNet50, Width: 0.125, Embedding: 4}, [3]int{3, 8, 8}, HeadProjection, 0},
	} {
		m, err := New(dev, c.cfg, c.in, c.head, c.classes, 1)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ParamCount(c.cfg, c.in, c.head, c.classes)
		if err != nil || n != int64(m.ParamCount()) {
			t.Errorf("%+v %v %s: ParamCount %d (%v), New has %d", c.cfg, c.in, c.head, n, err, m.ParamCount())
		}
	}
	for _, c := range []struct {
		cfg     Config
		in      [3]int
		classes int
		limit   string
	}{
		{Config{Arch: ArchMLP, Width: 16, Embedding: 8}, [3]int{3, 1024, 1024}, 10, "536870912"},
		{Config{Arch: ArchResNet18, Width: 16, Embedding: 8}, [3]int{3, 32, 32}, 10, "536870912"},
		{Config{Arch: ArchResNet50, Width: 16, Embedding: 8}, [3]int{3, 32, 32}, 10, "536870912"},
		{Config{Arch: ArchCNN, Width: 1, Embedding: 8}, [3]int{1, 28, 28}, 1_000_000_000_000, "536870912"},
		{Config{Arch: ArchMLP, Width: 1, Embedding: 8}, [3]int{1, 1_000_000, 1_000_000}, 10, "268435456"},
		{Config{Arch: ArchCNN, Width: 1, Embedding: 8}, [3]int{1, 1_000_000, 1_000_000}, 10, "268435456"},
	} {
		if _, err := New(dev, c.cfg, c.in, HeadClassifier, c.classes, 1); err == nil || !strings.Contains(err.Error(), c.limit) {
			t.Errorf("%+v on %v with %d classes: %v", c.cfg, c.in, c.classes, err)
		}
	}
}

// TestActivationCount: the largest activation of a pass, and its bound.
func TestActivationCount(t *testing.T) {
	n, err := ActivationCount(Config{Arch: ArchCNN, Width: 1, Embedding: 8}, [3]int{1, 28, 28}, 256)
	if err != nil || n != 256*28*28*32 {
		t.Errorf("cnn on MNIST, 256 rows: %d %v", n, err)
	}
	n, err = ActivationCount(Config{Arch: ArchMLP, Width: 1, Embedding: 8}, [3]int{3, 32, 32}, 10)
	if err != nil || n != 10*3072 {
		t.Errorf("mlp on CIFAR, 10 rows: %d %v", n, err)
	}
	n, err = ActivationCount(Config{Arch: ArchResNet50, Width: 1, Embedding: 8}, [3]int{3, 32, 32}, 2)
	if err != nil || n != 2*32*32*256 {
		t.Errorf("resnet50 on CIFAR, 2 rows: %d %v", n, err)
	}
	if _, err := ActivationCount(Config{Arch: ArchResNet18, Width: 1, Embedding: 8}, [3]int{3, 1024, 1024}, 1024); err == nil || !strings.Contains(err.Error(), "2147483648") {
		t.Errorf("resnet18 on 1024 x 1024 images, 1024 rows: %v", err)
	}
}
