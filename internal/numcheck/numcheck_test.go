package numcheck

import (
	"math"
	"testing"
)

func TestRelErrors(t *testing.T) {
	cases := []struct {
		name      string
		got, want float64
		rel       float64
	}{
		{"exact", 2, 2, 0},
		{"one percent", 1.01, 1, 0.01},
		{"negative want", -2.2, -2, 0.1},
		{"zero want", 0.5, 0, 0.5},
	}
	for _, c := range cases {
		if e := RelErr(c.got, c.want); math.Abs(e-c.rel) > 1e-12 {
			t.Errorf("%s: RelErr(%v, %v) = %v, want %v", c.name, c.got, c.want, e, c.rel)
		}
	}
	if e := RelL2([]float32{3, 4}, []float64{0, 0}); e != 5 {
		t.Errorf("RelL2 against zeros = %v, want the norm 5", e)
	}
	if e := RelL2([]float64{3, 5, 99}, []float64{3, 4}); math.Abs(e-0.2) > 1e-12 {
		t.Errorf("RelL2 = %v, want 1/5 (extra values of got ignored)", e)
	}
	if w := Float64s([]float32{1.5, -2}); len(w) != 2 || w[0] != 1.5 || w[1] != -2 {
		t.Errorf("Float64s = %v", w)
	}
}

func TestCentralDiff(t *testing.T) {
	v := []float32{1, 2, 3}
	cube := func() float64 { x := float64(v[1]); return x * x * x }
	// d/dx x^3 = 3 x^2 = 12 at 2; the central difference is off by h^2 = 1/4096.
	if fd := CentralDiff(v, 1, 1.0/64, cube); math.Abs(fd-12-1.0/4096) > 1e-9 {
		t.Errorf("CentralDiff = %v, want %v", fd, 12+1.0/4096)
	}
	if v[0] != 1 || v[1] != 2 || v[2] != 3 {
		t.Errorf("v not restored: %v", v)
	}
}

func TestNaNs(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		v := NaNs(n)
		if len(v) != n {
			t.Errorf("NaNs(%d) has %d values", n, len(v))
		}
		for i, x := range v {
			if !math.IsNaN(float64(x)) {
				t.Errorf("NaNs(%d)[%d] = %v", n, i, x)
			}
		}
	}
}
