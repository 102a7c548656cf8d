package kernels

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sincere-ml/sincere/internal/numcheck"
)

// goldenCase is one entry of ../shared/golden/losses.json.
type goldenCase struct {
	Note         string    `json:"note"`
	Loss         string    `json:"loss"`
	Temperature  float64   `json:"temperature"`
	Epsilon      float64   `json:"epsilon"`
	N            int       `json:"n"`
	D            int       `json:"d"`
	Labels       []int     `json:"labels"`
	Embeddings   []float64 `json:"embeddings"`
	ExpectedLoss float64   `json:"expected_loss"`
	ExpectedGrad []float64 `json:"expected_grad"`
}

// goldenDir is where the shared golden values live, relative to this package.
var goldenDir = filepath.Join("..", "..", "..", "shared", "golden")

func loadGolden(t *testing.T) []goldenCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, "losses.json"))
	if err != nil {
		t.Skipf("golden values not available: %v", err)
	}
	var doc struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse losses.json: %v", err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("losses.json holds no cases")
	}
	return doc.Cases
}

func (c goldenCase) params(t *testing.T) Params {
	t.Helper()
	l, err := ParseLoss(c.Loss)
	if err != nil {
		t.Fatal(err)
	}
	return Params{Loss: l, Temperature: c.Temperature, Epsilon: c.Epsilon}
}

func TestReferenceMatchesGolden(t *testing.T) {
	for _, c := range loadGolden(t) {
		loss, grad, _, err := Reference(c.params(t), c.Embeddings, c.N, c.D, c.Labels)
		if err != nil {
			t.Fatalf("%s/%s: %v", c.Note, c.Loss, err)
		}
		if e := numcheck.RelErr(loss, c.ExpectedLoss); e > 1e-12 {
			t.Errorf("%s/%s: loss %.15g, want %.15g (rel err %.2g)", c.Note, c.Loss, loss, c.ExpectedLoss, e)
		}
		if e := numcheck.RelL2(grad, c.ExpectedGrad); e > 1e-12 {
			t.Errorf("%s/%s: gradient rel L2 error %.2g", c.Note, c.Loss, e)
		}
	}
}
