package encoder

import (
	"slices"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
)

// The layers' and networks' numerics are checked on every device by the
// conformance suite (internal/kernels/kerneltest); these tests cover what
// the encoder itself decides.

func cpuDevice(t *testing.T) kernels.Device {
	t.Helper()
	d, err := cpu.NewDevice(kernels.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFlopsOfTheSmallCNN(t *testing.T) {
	m, err := New(cpuDevice(t), Config{Arch: ArchCNN, Width: 1, Embedding: 128}, [3]int{1, 28, 28}, HeadProjection, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// conv1 without an input gradient, conv2 and conv3 with one, and the
	// head's two 128 x 128 layers (each multiply-add is 2 flops).
	conv1 := 2 * 784 * 9 * 1 * 32.0
	conv2 := 2 * 196 * 288 * 64.0
	conv3 := 2 * 49 * 576 * 128.0
	head := 2 * 128 * 128.0
	want := 2*conv1 + 3*conv2 + 3*conv3 + 2*3*head
	if got := m.Flops(1); got != want {
		t.Errorf("Flops(1) = %v, want %v", got, want)
	}
	if got := m.Flops(10); got != 10*want {
		t.Errorf("Flops(10) = %v, want %v", got, 10*want)
	}
	if n := m.ParamCount(); n != 9*32+64+288*64+128+576*128+256+128*128+128+128*128+128 {
		t.Errorf("%d parameters", n)
	}
}

func TestParameterCounts(t *testing.T) {
	dev := cpuDevice(t)
	cases := []struct {
		arch   string
		params int // of the encoder alone, at width 1 on 3x32x32 images
	}{
		{ArchResNet18, 11168832}, // torchvision's resnet18 less its 7x7 stem and fc: the CIFAR variant
		{ArchResNet50, 23500352},
	}
	for _, c := range cases {
		m, err := New(dev, Config{Arch: c.arch, Width: 1, Embedding: 128}, [3]int{3, 32, 32}, HeadProjection, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range m.Encoder.Params() {
			n += p.Len()
		}
		if n != c.params {
			t.Errorf("%s: %d encoder parameters, want %d", c.arch, n, c.params)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotRoundTrip checks that a restored snapshot gives the same
// bits, parameters, momentum and running statistics alike.
func TestSnapshotRoundTrip(t *testing.T) {
	dev := cpuDevice(t)
	cfg := Config{Arch: ArchCNN, Width: 0.25, Embedding: 8}
	a, err := New(dev, cfg, [3]int{1, 8, 8}, HeadProjection, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(dev, cfg, [3]int{1, 8, 8}, HeadProjection, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.Snapshot(true)
	if err != nil {
		t.Fatal(err)
	}
	if same, _ := s.Equal(mustSnapshot(t, b)); same {
		t.Fatal("two seeds gave the same weights")
	}
	for i := range s.States { // running statistics unlike a new model's
		for j := range s.States[i].Values {
			s.States[i].Values[j] = float32(i) + float32(j)/8
		}
	}
	if err := b.Restore(s); err != nil {
		t.Fatal(err)
	}
	got := mustSnapshot(t, b)
	if same, what := s.Equal(got); !same {
		t.Errorf("restored snapshot differs in %s", what)
	}
	for i := range s.Momentum {
		if !slices.Equal(s.Momentum[i].Values, got.Momentum[i].Values) {
			t.Errorf("momentum %s differs", s.Momentum[i].Name)
		}
	}
	s.Params = s.Params[1:]
	if err := b.Restore(s); err == nil {
		t.Error("a snapshot missing a parameter was restored")
	}
}

func mustSnapshot(t *testing.T, m *Model) Snapshot {
	t.Helper()
	s, err := m.Snapshot(true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
