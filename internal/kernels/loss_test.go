package kernels

import (
	"math"
	"testing"
)

func nan() float64 { return math.NaN() }

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
	if err := (CUDAOptions{Precision: "fp16"}).Validate(); err == nil {
		t.Error("precision fp16 accepted")
	}
}
