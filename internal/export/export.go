// Package export hands a trained encoder to PyTorch: it renames and
// re-lays-out a model's parameters and batch-norm statistics into the
// state dict of a PyTorch module, written as safetensors.
//
// The ResNets (18: basic blocks; 50: bottlenecks) map onto the SINCERE
// authors' SupConResNet (and SupCEResNet
// for the cross-entropy baseline) of networks/resnet_big.py in
// tufts-ml/SupContrast and HobbitLong/SupContrast, so that
// model.load_state_dict(tensors, strict=True) accepts the file. The cnn
// and mlp have no counterpart there; they map onto the modules that
// scripts/torch_check.py defines, named as the table below says.
//
// The mapping is a table per architecture (Renames) plus rules per kind of
// array:
//
//	ours (sincere)                       PyTorch
//	<conv>.w   R x R x In x Out (RSCK)   <conv>.weight   Out x In x R x R (OIHW)
//	<linear>.w Out x In                  <linear>.weight Out x In (the mlp's first
//	                                     layer's inputs reordered from HWC to CHW)
//	<linear>.b                           <linear>.bias
//	<bn>.gamma, <bn>.beta                <bn>.weight, <bn>.bias
//	<bn>.running_mean, .running_var      the same names
//	                                     <bn>.num_batches_tracked (int64 scalar 0:
//	                                     PyTorch reads it only when a batch norm's
//	                                     momentum is None; ours is 0.1)
//
// with these module renames:
//
//	every architecture: head.fc1 -> head.0, head.fc2 -> head.2 (the projection
//	                    head: Linear, ReLU, Linear; the embedding is its output,
//	                    L2-normalised), head.fc -> fc (the ce classifier)
//	resnet18, resnet50: encoder.stem.conv -> encoder.conv1, encoder.stem.bn ->
//	                    encoder.bn1, <block>.shortcut.conv -> <block>.shortcut.0,
//	                    <block>.shortcut.bn -> <block>.shortcut.1
//	cnn:                none (encoder.conv1..3, encoder.bn1..3: Conv2d 3x3 with
//	                    strides 1, 2, 2 and padding 1, no bias; BatchNorm2d and
//	                    ReLU after each; then global average pooling)
//	mlp:                none (encoder.fc1, encoder.fc2: Linear without bias on the
//	                    flattened CHW image, each followed by BatchNorm1d
//	                    encoder.bn1, encoder.bn2 and ReLU)
package export

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sincere-ml/sincere/internal/encoder"
	"github.com/sincere-ml/sincere/internal/safetensors"
)

// Rename replaces a module path segment: Old where it stands between dots
// (or at the start) becomes New.
type Rename struct{ Old, New string }

// headRenames apply to every architecture.
var headRenames = []Rename{{"head.fc1", "head.0"}, {"head.fc2", "head.2"}, {"head.fc", "fc"}}

// resnetRenames bring our ResNet names to the authors' ResNet.
var resnetRenames = []Rename{
	{"encoder.stem.conv", "encoder.conv1"}, {"encoder.stem.bn", "encoder.bn1"},
	{"shortcut.conv", "shortcut.0"}, {"shortcut.bn", "shortcut.1"},
}

// Renames holds, per architecture, the module renames applied before the
// head's. An architecture missing here cannot be exported.
var Renames = map[string][]Rename{
	encoder.ArchResNet18: resnetRenames,
	encoder.ArchResNet50: resnetRenames,
	encoder.ArchCNN:      nil,
	encoder.ArchMLP:      nil,
}

// Module names the PyTorch module a model's export loads into.
func Module(m *encoder.Model) string {
	switch {
	case strings.HasPrefix(m.Config.Arch, "resnet") && m.Head == encoder.HeadClassifier:
		return "SupCEResNet (networks/resnet_big.py)"
	case strings.HasPrefix(m.Config.Arch, "resnet"):
		return "SupConResNet (networks/resnet_big.py)"
	}
	return "scripts/torch_check.py's " + m.Config.Arch
}

// renameModule applies the renames to a module path (the name without its
// last segment).
func renameModule(path string, renames []Rename) string {
	for _, r := range renames {
		switch {
		case path == r.Old:
			path = r.New
		case strings.HasPrefix(path, r.Old+"."):
			path = r.New + path[len(r.Old):]
		default:
			if i := strings.Index(path, "."+r.Old); i >= 0 && (len(path) == i+1+len(r.Old) || path[i+1+len(r.Old)] == '.') {
				path = path[:i+1] + r.New + path[i+1+len(r.Old):]
			}
		}
	}
	return path
}

// split cuts a parameter name into its module path and its last segment.
func split(name string) (string, string) {
	i := strings.LastIndex(name, ".")
	return name[:i], name[i+1:]
}

// PyTorch returns the model's state dict in PyTorch's names and layouts:
// every parameter and running statistic, plus num_batches_tracked (0) for
// every batch norm. The model holds the trained values.
func PyTorch(m *encoder.Model) ([]safetensors.Tensor, error) {
	renames, ok := Renames[m.Config.Arch]
	if !ok {
		return nil, fmt.Errorf("export: no PyTorch mapping for architecture %q yet", m.Config.Arch)
	}
	renames = append(slices.Clone(renames), headRenames...)
	snap, err := m.Snapshot(false)
	if err != nil {
		return nil, err
	}
	values := map[string][]float32{}
	for _, a := range append(slices.Clone(snap.Params), snap.States...) {
		values[a.Name] = a.Values
	}
	var out []safetensors.Tensor
	first := true
	for _, p := range m.Params() {
		mod, leaf := split(p.Name)
		to := renameModule(mod, renames)
		v := values[p.Name]
		t := safetensors.Tensor{Dtype: safetensors.F32}
		switch {
		case leaf == "w" && len(p.Shape) == 4: // convolution: RSCK -> OIHW
			t.Name, t.Shape, t.Float32 = to+".weight", []int{p.Shape[3], p.Shape[2], p.Shape[0], p.Shape[1]}, rsckToOIHW(v, p.Shape)
		case leaf == "w" && len(p.Shape) == 2: // linear: Out x In, as PyTorch
			t.Name, t.Shape, t.Float32 = to+".weight", slices.Clone(p.Shape), v
			if first && m.Config.Arch == encoder.ArchMLP {
				t.Float32 = hwcToCHWColumns(v, p.Shape[0], m.Input)
			}
		case leaf == "b":
			t.Name, t.Shape, t.Float32 = to+".bias", slices.Clone(p.Shape), v
		case leaf == "gamma":
			t.Name, t.Shape, t.Float32 = to+".weight", slices.Clone(p.Shape), v
		case leaf == "beta":
			t.Name, t.Shape, t.Float32 = to+".bias", slices.Clone(p.Shape), v
		default:
			return nil, fmt.Errorf("export: no PyTorch layout for parameter %s of shape %v", p.Name, p.Shape)
		}
		first = false
		out = append(out, t)
	}
	for _, s := range m.States() {
		mod, leaf := split(s.Name)
		to := renameModule(mod, renames)
		if leaf != "running_mean" && leaf != "running_var" {
			return nil, fmt.Errorf("export: no PyTorch name for state %s", s.Name)
		}
		v := values[s.Name]
		out = append(out, safetensors.Tensor{Name: to + "." + leaf, Dtype: safetensors.F32, Shape: []int{len(v)}, Float32: v})
		if leaf == "running_mean" {
			out = append(out, safetensors.Tensor{Name: to + ".num_batches_tracked", Dtype: safetensors.I64, Shape: []int{}, Int64: []int64{0}})
		}
	}
	slices.SortFunc(out, func(a, b safetensors.Tensor) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("export: two arrays map to %s", out[i].Name)
		}
	}
	return out, nil
}

// Metadata describes the export for a reader: what module it loads into and
// how to feed it.
func Metadata(m *encoder.Model, mean, std []float32) map[string]string {
	floats := func(v []float32) string {
		var s []string
		for _, x := range v {
			s = append(s, strconv.FormatFloat(float64(x), 'g', -1, 32))
		}
		return strings.Join(s, ",")
	}
	md := map[string]string{
		"format":     "pt",
		"module":     Module(m),
		"arch":       m.Config.Arch,
		"width":      strconv.FormatFloat(m.Config.Width, 'g', -1, 64),
		"head":       m.Head,
		"input":      fmt.Sprintf("%dx%dx%d", m.Input[0], m.Input[1], m.Input[2]),
		"layout":     "NCHW float32, pixels scaled to [0, 1], then (x - mean) / std per channel",
		"mean":       floats(mean),
		"std":        floats(std),
		"features":   strconv.Itoa(m.FeatureDim),
		"out":        strconv.Itoa(m.OutDim()),
		"batch_norm": "eps 1e-5, momentum 0.1",
	}
	if m.Head == encoder.HeadProjection {
		if l, ok := m.HeadNet.Layers[0].(*encoder.Linear); ok {
			md["head_hidden"] = strconv.Itoa(l.Out)
		}
	}
	return md
}

// rsckToOIHW reorders a filter bank from R x S x C x K to K x C x R x S.
func rsckToOIHW(v []float32, shape []int) []float32 {
	r, s, c, k := shape[0], shape[1], shape[2], shape[3]
	out := make([]float32, len(v))
	for ri := range r {
		for si := range s {
			for ci := range c {
				for ki := range k {
					out[((ki*c+ci)*r+ri)*s+si] = v[((ri*s+si)*c+ci)*k+ki]
				}
			}
		}
	}
	return out
}

// hwcToCHWColumns reorders the input columns of an Out x (H*W*C) weight
// matrix, whose inputs are a channels-last image, to channel-major order.
func hwcToCHWColumns(v []float32, rows int, in [3]int) []float32 {
	c, h, w := in[0], in[1], in[2]
	cols := c * h * w
	out := make([]float32, len(v))
	for o := range rows {
		for y := range h {
			for x := range w {
				for ch := range c {
					out[o*cols+(ch*h+y)*w+x] = v[o*cols+(y*w+x)*c+ch]
				}
			}
		}
	}
	return out
}
