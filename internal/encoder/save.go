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
// true) and the running statistics to host memory: one download per arena.
func (m *Model) Snapshot(momentum bool) (Snapshot, error) {
	var s Snapshot
	w, err := download(m.dev, m.params.Floats())
	if err != nil {
		return s, err
	}
	var v []float32
	if momentum {
		if v, err = download(m.dev, m.moms.Floats()); err != nil {
			return s, err
		}
	}
	st, err := download(m.dev, m.states.Floats())
	if err != nil {
		return s, err
	}
	for _, p := range m.Params() {
		s.Params = append(s.Params, Array{p.Name, carve(w, p.W, p.Len())})
		if momentum {
			s.Momentum = append(s.Momentum, Array{p.Name, carve(v, p.V, p.Len())})
		}
	}
	for _, x := range m.States() {
		s.States = append(s.States, Array{x.Name, carve(st, x.Buf, x.Len())})
	}
	for _, list := range [][]Array{s.Params, s.Momentum, s.States} {
		slices.SortFunc(list, func(a, b Array) int { return strings.Compare(a.Name, b.Name) })
	}
	return s, nil
}

// carve returns a copy of a view's values from a download of its arena.
func carve(arena []float32, b kernels.Buffer, n int) []float32 {
	_, off := b.Mem()
	return slices.Clone(arena[off : off+n])
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
// It uploads each arena whole.
func (m *Model) Restore(s Snapshot) error {
	params, mom, states := byName(s.Params), byName(s.Momentum), byName(s.States)
	if len(params) != len(m.Params()) {
		return fmt.Errorf("snapshot has %d parameters, the model %d", len(params), len(m.Params()))
	}
	if len(states) != len(m.States()) {
		return fmt.Errorf("snapshot has %d running statistics, the model %d", len(states), len(m.States()))
	}
	w, st := make([]float32, m.params.Floats().Len()), make([]float32, m.states.Floats().Len())
	var v []float32
	if s.Momentum != nil {
		v = make([]float32, m.moms.Floats().Len())
	}
	for _, p := range m.Params() {
		if err := place(w, p.W, p.Len(), params, p.Name); err != nil {
			return err
		}
		if v != nil {
			if err := place(v, p.V, p.Len(), mom, p.Name); err != nil {
				return err
			}
		}
	}
	for _, x := range m.States() {
		if err := place(st, x.Buf, x.Len(), states, x.Name); err != nil {
			return err
		}
	}
	m.dev.Upload(m.params.Floats(), w)
	if v != nil {
		m.dev.Upload(m.moms.Floats(), v)
	}
	m.dev.Upload(m.states.Floats(), st)
	return m.dev.Sync()
}

// place checks that from holds name with n values and copies them to the
// view's place in an arena's host image.
func place(dst []float32, b kernels.Buffer, n int, from map[string][]float32, name string) error {
	v, ok := from[name]
	if !ok {
		return fmt.Errorf("snapshot lacks %s", name)
	}
	if len(v) != n {
		return fmt.Errorf("snapshot's %s has %d values, the model's %d", name, len(v), n)
	}
	_, off := b.Mem()
	copy(dst[off:off+n], v)
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
func download(dev kernels.Device, b kernels.Buffer) ([]float32, error) {
	out := make([]float32, b.Len())
	return out, dev.Download(out, b)
}
