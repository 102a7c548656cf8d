package experiment

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
)

// TestAnalyzeRepulsion runs the analysis on a small trained run: the fused
// pass agrees with the float64 reference batch by batch (the same batches),
// SINCERE's repulsion is exactly 0 at every k, and SupCon repels some
// same-class pairs once a batch holds few classes with many images each.
func TestAnalyzeRepulsion(t *testing.T) {
	c := tinyConfig(t, "train.epochs=1", "train.batch_size=60")
	dir, err := Pretrain(context.Background(), c, PretrainOptions{Method: "sincere", Seed: 1, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fused, err := AnalyzeRepulsion(context.Background(), RepulsionOptions{Run: dir, Batches: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := AnalyzeRepulsion(context.Background(), RepulsionOptions{Run: dir, Batches: 2, Seed: 3,
		PairStats: func(p kernels.Params, z []float32, n, d int, labels []int) (kernels.PairStats, error) {
			z64 := make([]float64, len(z))
			for i, v := range z {
				z64[i] = float64(v)
			}
			return kernels.ReferencePairStats(p, z64, n, d, labels)
		}})
	if err != nil {
		t.Fatal(err)
	}
	// Batches of 60 images: k = 2, 4, 8, 16 (up to half the batch).
	if len(fused.Rows) != 2*4 || len(ref.Rows) != len(fused.Rows) {
		t.Fatalf("%d rows (reference %d), want 8", len(fused.Rows), len(ref.Rows))
	}
	maxSupCon := 0.0
	for i, r := range fused.Rows {
		q := ref.Rows[i]
		if r.K != q.K || r.Loss != q.Loss || r.Pairs != q.Pairs || math.Abs(float64(r.Repelled-q.Repelled)) > float64(q.Pairs)/1000 ||
			math.Abs(r.RepulsiveShare-q.RepulsiveShare) > 1e-4 {
			t.Errorf("k %d %s: fused %+v, reference %+v", r.K, r.Loss, r, q)
		}
		if r.Loss == "sincere" && (r.Repelled != 0 || r.RepelledFraction != 0 || r.RepulsiveShare != 0) {
			t.Errorf("k %d: SINCERE repels: %+v", r.K, r)
		}
		if r.Loss == "supcon" {
			maxSupCon = max(maxSupCon, r.RepelledFraction)
		}
		if r.Rows != 2*r.K*r.Classes || r.Pairs == 0 {
			t.Errorf("k %d: %d rows of %d classes, %d pairs", r.K, r.Rows, r.Classes, r.Pairs)
		}
	}
	if maxSupCon == 0 {
		t.Error("SupCon repels no pair at any k; the test shows nothing")
	}
	if _, err := AnalyzeRepulsion(context.Background(), RepulsionOptions{Run: dir, Batches: 1, Ks: []int{1}}); err == nil || !strings.Contains(err.Error(), "--k 1") {
		t.Errorf("k = 1: %v", err)
	}
	if _, err := AnalyzeRepulsion(context.Background(), RepulsionOptions{Init: true, Batches: 1}); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("--init without --config: %v", err)
	}
}
