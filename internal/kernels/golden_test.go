package kernels_test

import (
	"testing"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/kerneltest"
	"github.com/sincere-ml/sincere/internal/numcheck"
)

func TestReferenceMatchesGolden(t *testing.T) {
	for _, c := range kerneltest.LoadGolden(t) {
		loss, grad, _, err := kernels.Reference(c.Params(t), c.Embeddings, c.N, c.D, c.Labels)
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
