//go:build gpuemu

package cudaemu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sincere-ml/sincere/internal/numcheck"
)

// The helpers the tests of the kernel families share: argument slots,
// launches on either schedule, random inputs and error checks.

// dev launches kernels for a test, on the ordinary or the reversed
// schedule (LaunchReversed).
type dev struct {
	t   *testing.T
	rev bool
}

// schedules are the two schedules every family's tests run on.
var schedules = []bool{false, true}

func scheduleName(rev bool) string {
	if rev {
		return "reversed"
	}
	return "in order"
}

// run launches name on grid blocks of 256 threads with the argument slots a.
func (d dev) run(name string, grid [3]int, a ...uint64) {
	d.t.Helper()
	launch := Launch
	if d.rev {
		launch = LaunchReversed
	}
	if err := launch(name, grid, [3]int{256, 1, 1}, a); err != nil {
		d.t.Fatal(err)
	}
}

// Argument slots.
func ptr[T any](b buffer[T]) uint64 { return uint64(b.p) }
func i32(v int) uint64              { return uint64(uint32(int32(v))) }
func i64(v int) uint64              { return uint64(int64(v)) }
func f32(v float32) uint64          { return uint64(math.Float32bits(v)) }
func f64(v float64) uint64          { return math.Float64bits(v) }

// null is a null pointer argument.
const null = uint64(0)

// grid1 is a one-dimensional grid.
func grid1(x int) [3]int { return [3]int{x, 1, 1} }

// flatGrid is the grid the flat kernels take for n elements
// (elementwise.cu: min(ceil(n / 1024), 4096)).
func flatGrid(n int) [3]int { return grid1(min(max((n+1023)/1024, 1), 4096)) }

// randn returns n values of mean mu and standard deviation sd.
func randn(rng *rand.Rand, n int, mu, sd float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mu + sd*rng.NormFloat64())
	}
	return v
}

// upload returns a device buffer holding v.
func upload[T any](t *testing.T, v []T) buffer[T] {
	t.Helper()
	b := alloc[T](t, max(len(v), 1))
	if len(v) > 0 {
		b.set(v)
	}
	return b
}

// wide widens float32 values.
func wide(v []float32) []float64 { return numcheck.Float64s(v) }

// checkClose fails when got has a NaN or an infinity, or is further than
// tol from want in relative L2; it returns the error.
func checkClose[F float32 | float64](t *testing.T, what string, got []F, want []float64, tol float64) float64 {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if g := float64(got[i]); math.IsNaN(g) || math.IsInf(g, 0) {
			t.Errorf("%s: value %d is %v (want %v): not written, or not finite", what, i, g, want[i])
			return math.Inf(1)
		}
	}
	e := numcheck.RelL2(got, want)
	if !(e <= tol) {
		t.Errorf("%s: relative L2 error %.3g, want <= %.0e", what, e, tol)
	}
	return e
}

// sameBits fails when two results differ in any bit (the two schedules'
// results, or a buffer before and after a launch that must not touch it).
func sameBits[T comparable](t *testing.T, what string, a, b []T) {
	t.Helper()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s: value %d differs: %v and %v", what, i, a[i], b[i])
		}
	}
}

// colReduceChunk is the host's choice of rows per partial sum of a column
// reduction (elementwise.cu): it returns chunkRows and the chunks.
func colReduceChunk(rows, cols int) (chunkRows, chunks int) {
	colBlocks := (cols + 31) / 32
	chunks = max(1, min((rows+63)/64, (1024+colBlocks-1)/colBlocks))
	per := (rows + chunks - 1) / chunks
	chunkRows = (per + 7) / 8 * 8
	return chunkRows, (rows + chunkRows - 1) / chunkRows
}

// errTable records the largest error per kernel and precision that a test
// measured, for the log (go test -v shows it).
type errTable map[string]float64

func (e errTable) note(key string, err float64) { e[key] = max(e[key], err) }

func (e errTable) log(t *testing.T) {
	t.Helper()
	for k, v := range e {
		t.Logf("%-40s max relative L2 error %.3g", k, v)
	}
}

// sizes formats a case name.
func sizes(format string, a ...any) string { return fmt.Sprintf(format, a...) }
