package export

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/cpu"
	"github.com/sincere-ml/sincere/internal/safetensors"
)

func model(t *testing.T, arch, head string, in [3]int) *encoder.Model {
	t.Helper()
	dev, err := cpu.NewDevice(kernels.CPUOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := encoder.New(dev, encoder.Config{Arch: arch, Width: 0.125, Embedding: 8}, in, head, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// authorsResNetKeys lists the state dict keys of the authors'
// SupConResNet('resnet18' or 'resnet50') (networks/resnet_big.py), or of
// SupCEResNet with classifier: the stem, basic blocks (2, 2, 2, 2) or
// bottlenecks (3, 4, 6, 3) per stage with a projection shortcut where the
// shape changes (every stage's first bottleneck), then the head.
func authorsResNetKeys(arch string, classifier bool) []string {
	bn := func(p string) []string {
		var out []string
		for _, s := range []string{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"} {
			out = append(out, p+"."+s)
		}
		return out
	}
	keys := append([]string{"encoder.conv1.weight"}, bn("encoder.bn1")...)
	blocks, convs := []int{2, 2, 2, 2}, 2
	if arch == encoder.ArchResNet50 {
		blocks, convs = []int{3, 4, 6, 3}, 3
	}
	for layer := 1; layer <= 4; layer++ {
		for block := range blocks[layer-1] {
			p := fmt.Sprintf("encoder.layer%d.%d", layer, block)
			for c := 1; c <= convs; c++ {
				keys = append(keys, fmt.Sprintf("%s.conv%d.weight", p, c))
				keys = append(keys, bn(fmt.Sprintf("%s.bn%d", p, c))...)
			}
			if block == 0 && (layer > 1 || convs == 3) {
				keys = append(keys, p+".shortcut.0.weight")
				keys = append(keys, bn(p+".shortcut.1")...)
			}
		}
	}
	if classifier {
		keys = append(keys, "fc.weight", "fc.bias")
	} else {
		keys = append(keys, "head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias")
	}
	slices.Sort(keys)
	return keys
}

func names(ts []safetensors.Tensor) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestResNetNamesAreTheAuthors(t *testing.T) {
	for _, c := range []struct{ arch, head string }{{encoder.ArchResNet18, encoder.HeadProjection},
		{encoder.ArchResNet18, encoder.HeadClassifier}, {encoder.ArchResNet50, encoder.HeadProjection}} {
		arch, head := c.arch, c.head
		m := model(t, arch, head, [3]int{3, 8, 8})
		ts, err := PyTorch(m)
		if err != nil {
			t.Fatal(err)
		}
		want := authorsResNetKeys(arch, head == encoder.HeadClassifier)
		if got := names(ts); !slices.Equal(got, want) {
			t.Errorf("%s %s: keys\n%v\nwant\n%v", arch, head, got, want)
		}
		for _, x := range ts {
			if arch == encoder.ArchResNet50 {
				continue
			}
			switch x.Name {
			case "encoder.conv1.weight": // 64 * 0.125 = 8 filters over 3 channels, 3x3
				if !slices.Equal(x.Shape, []int{8, 3, 3, 3}) {
					t.Errorf("%s shape %v", x.Name, x.Shape)
				}
			case "encoder.layer2.0.shortcut.0.weight":
				if !slices.Equal(x.Shape, []int{16, 8, 1, 1}) {
					t.Errorf("%s shape %v", x.Name, x.Shape)
				}
			case "encoder.bn1.num_batches_tracked":
				if x.Dtype != safetensors.I64 || len(x.Shape) != 0 || x.Int64[0] != 0 {
					t.Errorf("%s: %+v", x.Name, x)
				}
			}
		}
	}
}

func TestSmallNetworkNames(t *testing.T) {
	cnn, err := PyTorch(model(t, encoder.ArchCNN, encoder.HeadProjection, [3]int{1, 8, 8}))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(cnn); len(got) != 3+3*5+4 || !slices.Contains(got, "encoder.conv3.weight") || !slices.Contains(got, "encoder.bn3.running_var") || !slices.Contains(got, "head.2.bias") {
		t.Errorf("cnn keys %v", got)
	}
	mlp, err := PyTorch(model(t, encoder.ArchMLP, encoder.HeadClassifier, [3]int{2, 3, 4}))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(mlp); len(got) != 2+2*5+2 || !slices.Contains(got, "encoder.fc1.weight") || !slices.Contains(got, "fc.bias") || slices.Contains(got, "encoder.fc1.bias") {
		t.Errorf("mlp keys %v", got)
	}
}

// TestLayouts checks the two reorderings against index arithmetic written
// out per element.
func TestLayouts(t *testing.T) {
	r, s, c, k := 3, 2, 4, 5
	v := make([]float32, r*s*c*k)
	for i := range v {
		v[i] = float32(i)
	}
	o := rsckToOIHW(v, []int{r, s, c, k})
	for ki := range k {
		for ci := range c {
			for ri := range r {
				for si := range s {
					got := o[ki*c*r*s+ci*r*s+ri*s+si]
					want := v[ri*s*c*k+si*c*k+ci*k+ki]
					if got != want {
						t.Fatalf("OIHW[%d,%d,%d,%d] = %v, want RSCK[%d,%d,%d,%d] = %v", ki, ci, ri, si, got, ri, si, ci, ki, want)
					}
				}
			}
		}
	}
	in := [3]int{3, 2, 4} // C, H, W
	rows := 2
	w := make([]float32, rows*3*2*4)
	for i := range w {
		w[i] = float32(i)
	}
	p := hwcToCHWColumns(w, rows, in)
	for row := range rows {
		for ch := range 3 {
			for y := range 2 {
				for x := range 4 {
					if got, want := p[row*24+ch*8+y*4+x], w[row*24+(y*4+x)*3+ch]; got != want {
						t.Fatalf("row %d input (c %d, y %d, x %d): %v, want %v", row, ch, y, x, got, want)
					}
				}
			}
		}
	}
	if rn := renameModule("encoder.layer3.0.shortcut.conv", append(resnetRenames, headRenames...)); rn != "encoder.layer3.0.shortcut.0" {
		t.Errorf("rename %q", rn)
	}
	if rn := renameModule("head.fc", headRenames); rn != "fc" {
		t.Errorf("rename %q", rn)
	}
}
