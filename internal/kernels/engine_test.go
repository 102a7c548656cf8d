package kernels

import (
	"errors"
	"testing"
)

func TestOpen(t *testing.T) {
	cases := []struct {
		device, want string
		err          error
	}{
		{"cpu", "cpu", nil},
		{"auto", "cpu", nil}, // no GPU in a default build
		{"cuda", "", ErrNoCUDASupport},
	}
	for _, c := range cases {
		if CUDASupport {
			t.Skip("gpu build: device choice depends on the machine")
		}
		e, err := Open(c.device, Options{})
		if !errors.Is(err, c.err) {
			t.Errorf("Open(%q): error %v, want %v", c.device, err, c.err)
			continue
		}
		if err == nil && e.Device() != c.want {
			t.Errorf("Open(%q) runs on %q, want %q", c.device, e.Device(), c.want)
		}
	}
	if _, err := Open("tpu", Options{}); err == nil {
		t.Error("Open(tpu) succeeded")
	}
	if _, err := Open("cpu", Options{CPU: CPUOptions{Tile: 50}}); err == nil {
		t.Error("tile 50 accepted")
	}
}

func TestParamsValidate(t *testing.T) {
	bad := []Params{
		{Loss: SINCERE, Temperature: 0},
		{Loss: SINCERE, Temperature: -0.1},
		{Loss: SupCon, Temperature: 0.1, BaseTemperature: -1},
		{Loss: Loss(7), Temperature: 0.1},
		{Loss: EpsSupInfoNCE, Temperature: 0.1, Epsilon: nan()},
		{Loss: SupCon, Temperature: nan()},
	}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if err := (Params{Loss: SupCon, Temperature: 0.07, BaseTemperature: 0.07}).Validate(); err != nil {
		t.Error(err)
	}
	for _, name := range LossNames() {
		l, err := ParseLoss(name)
		if err != nil || l.String() != name {
			t.Errorf("ParseLoss(%q) = %v, %v", name, l, err)
		}
	}
	if _, err := ParseLoss("simclr"); err == nil {
		t.Error("ParseLoss(simclr) succeeded")
	}
}

func TestCUDAOptions(t *testing.T) {
	for _, p := range append(Precisions(), "") {
		if err := (CUDAOptions{Precision: p}).Validate(); err != nil {
			t.Errorf("precision %q: %v", p, err)
		}
	}
	if _, err := Open("cpu", Options{CUDA: CUDAOptions{Precision: "fp16"}}); err == nil {
		t.Error("precision fp16 accepted")
	}
}
