package encoder

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// Array is a named array of values in host memory.
type Array struct {
	Name   string
	Values []float32
}

// Snapshot is a model's values in host memory, in name order, so that
// encoding it gives the same bytes for the same values: what checkpoints
// and model files store.
type Snapshot struct {
	Params   []Array
	Momentum []Array
	States   []Array
}

// Snapshot copies the weights, the optimiser's momentum (when momentum is
// true) and the running statistics to host memory.
func (m *Model) Snapshot(momentum bool) Snapshot {
	var s Snapshot
	for _, p := range m.Params() {
		s.Params = append(s.Params, Array{p.Name, download(m.dev, p.W)})
		if momentum {
			s.Momentum = append(s.Momentum, Array{p.Name, download(m.dev, p.V)})
		}
	}
	for _, st := range m.States() {
		s.States = append(s.States, Array{st.Name, download(m.dev, st.Buf)})
	}
	for _, list := range [][]Array{s.Params, s.Momentum, s.States} {
		slices.SortFunc(list, func(a, b Array) int { return strings.Compare(a.Name, b.Name) })
	}
	return s
}

// byName indexes arrays by name.
func byName(list []Array) map[string][]float32 {
	out := make(map[string][]float32, len(list))
	for _, a := range list {
		out[a.Name] = a.Values
	}
	return out
}

// Restore loads a snapshot into the model: every parameter and state must be
// present with the right length (momentum only when the snapshot has it).
func (m *Model) Restore(s Snapshot) error {
	params, mom, states := byName(s.Params), byName(s.Momentum), byName(s.States)
	if len(params) != len(m.Params()) {
		return fmt.Errorf("snapshot has %d parameters, the model %d", len(params), len(m.Params()))
	}
	for _, p := range m.Params() {
		if err := upload(m, p.W, params, p.Name); err != nil {
			return err
		}
		if s.Momentum != nil {
			if err := upload(m, p.V, mom, p.Name); err != nil {
				return err
			}
		}
	}
	for _, st := range m.States() {
		if err := upload(m, st.Buf, states, st.Name); err != nil {
			return err
		}
	}
	return nil
}

func upload(m *Model, dst kernels.Buffer, from map[string][]float32, name string) error {
	v, ok := from[name]
	if !ok {
		return fmt.Errorf("snapshot lacks %s", name)
	}
	if len(v) != dst.Len() {
		return fmt.Errorf("snapshot's %s has %d values, the model's %d", name, len(v), dst.Len())
	}
	m.dev.Upload(dst, v)
	return nil
}

// Equal reports whether two snapshots hold bit-identical parameters and
// states, and names the first difference.
func (s Snapshot) Equal(o Snapshot) (bool, string) {
	for _, pair := range []struct {
		what string
		a, b []Array
	}{{"parameter", s.Params, o.Params}, {"state", s.States, o.States}} {
		if len(pair.a) != len(pair.b) {
			return false, fmt.Sprintf("%d vs %d %ss", len(pair.a), len(pair.b), pair.what)
		}
		for i, a := range pair.a {
			if a.Name != pair.b[i].Name || !slices.Equal(a.Values, pair.b[i].Values) {
				return false, pair.what + " " + a.Name
			}
		}
	}
	return true, ""
}

// download copies a device buffer to new host memory.
func download(dev kernels.Device, b kernels.Buffer) []float32 {
	out := make([]float32, b.Len())
	dev.Download(out, b)
	return out
}
