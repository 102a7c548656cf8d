package encoder

import (
	"fmt"
	"slices"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// Snapshot is a model's values in host memory, by parameter and state name:
// what checkpoints and model files store.
type Snapshot struct {
	Params   map[string][]float32
	Momentum map[string][]float32
	States   map[string][]float32
}

// Snapshot copies the weights, the optimiser's momentum (when momentum is
// true) and the running statistics to host memory.
func (m *Model) Snapshot(momentum bool) Snapshot {
	s := Snapshot{Params: map[string][]float32{}, States: map[string][]float32{}}
	if momentum {
		s.Momentum = map[string][]float32{}
	}
	for _, p := range m.Params() {
		s.Params[p.Name] = download(m.dev, p.W)
		if momentum {
			s.Momentum[p.Name] = download(m.dev, p.V)
		}
	}
	for _, st := range m.States() {
		s.States[st.Name] = download(m.dev, st.Buf)
	}
	return s
}

// Restore loads a snapshot into the model: every parameter and state must be
// present with the right length (momentum only when the snapshot has it).
func (m *Model) Restore(s Snapshot) error {
	for _, p := range m.Params() {
		if err := upload(m, p.W, s.Params, p.Name); err != nil {
			return err
		}
		if s.Momentum != nil {
			if err := upload(m, p.V, s.Momentum, p.Name); err != nil {
				return err
			}
		}
	}
	for _, st := range m.States() {
		if err := upload(m, st.Buf, s.States, st.Name); err != nil {
			return err
		}
	}
	if len(s.Params) != len(m.Params()) {
		return fmt.Errorf("snapshot has %d parameters, the model %d", len(s.Params), len(m.Params()))
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
		a, b map[string][]float32
	}{{"parameter", s.Params, o.Params}, {"state", s.States, o.States}} {
		if len(pair.a) != len(pair.b) {
			return false, fmt.Sprintf("%d vs %d %ss", len(pair.a), len(pair.b), pair.what)
		}
		for name, v := range pair.a {
			if !slices.Equal(v, pair.b[name]) {
				return false, pair.what + " " + name
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
