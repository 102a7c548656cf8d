package backend

import (
	"errors"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
)

func TestOpenLossEngine(t *testing.T) {
	cases := []struct {
		device, want string
		err          error
	}{
		{"cpu", "cpu", nil},
		{"auto", "cpu", nil}, // no GPU in a default build
		{"cuda", "", kernels.ErrNoCUDASupport},
	}
	for _, c := range cases {
		if CUDASupport {
			t.Skip("gpu build: device choice depends on the machine")
		}
		e, err := OpenLossEngine(c.device, kernels.Options{})
		if !errors.Is(err, c.err) {
			t.Errorf("Open(%q): error %v, want %v", c.device, err, c.err)
			continue
		}
		if err == nil && e.Device() != c.want {
			t.Errorf("Open(%q) runs on %q, want %q", c.device, e.Device(), c.want)
		}
	}
	if _, err := OpenLossEngine("tpu", kernels.Options{}); err == nil {
		t.Error("Open(tpu) succeeded")
	}
	if _, err := OpenLossEngine("cpu", kernels.Options{CPU: kernels.CPUOptions{Tile: 50}}); err == nil {
		t.Error("tile 50 accepted")
	}
}

func TestOpenDevice(t *testing.T) {
	if CUDASupport {
		t.Skip("gpu build: device choice depends on the machine")
	}
	for _, name := range []string{"cpu", "auto"} {
		d, err := OpenDevice(name, kernels.Options{})
		if err != nil || d.Name() != kernels.DeviceCPU {
			t.Errorf("OpenDevice(%q) = %v, %v; want the CPU", name, d, err)
		}
	}
	if _, err := OpenDevice("cuda", kernels.Options{}); !errors.Is(err, kernels.ErrNoCUDASupport) {
		t.Errorf("OpenDevice(cuda) in a CPU build: %v", err)
	}
	if _, err := OpenDevice("cpu", kernels.Options{CUDA: kernels.CUDAOptions{Precision: "fp16"}}); err == nil {
		t.Error("precision fp16 accepted")
	}
	if _, err := OpenDevice("tpu", kernels.Options{}); err == nil {
		t.Error("OpenDevice(tpu) succeeded")
	}
}
