package kernels

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Loss names one of the supervised contrastive losses of DESIGN section 2.
type Loss int

const (
	// SupCon is the supervised contrastive loss of Khosla et al. (2020):
	// every other sample sits in the softmax denominator of each positive.
	SupCon Loss = iota
	// SINCERE is Supervised InfoNCE REvisited: each positive pair's
	// denominator holds only that positive and the anchor's negatives.
	SINCERE
	// EpsSupInfoNCE is SINCERE with the positive's logit lowered by a margin
	// epsilon inside the denominator.
	EpsSupInfoNCE
)

// lossNames holds the accepted loss names in the order of the Loss constants.
var lossNames = [...]string{"supcon", "sincere", "eps-supinfonce"}

// LossNames returns the names ParseLoss accepts.
func LossNames() []string { return append([]string(nil), lossNames[:]...) }

// String returns the loss's command-line name.
func (l Loss) String() string {
	if l < 0 || int(l) >= len(lossNames) {
		return fmt.Sprintf("Loss(%d)", int(l))
	}
	return lossNames[l]
}

// ParseLoss maps a command-line name (case-insensitive) to a Loss.
func ParseLoss(name string) (Loss, error) {
	for i, n := range lossNames {
		if strings.EqualFold(name, n) {
			return Loss(i), nil
		}
	}
	return 0, fmt.Errorf("unknown loss %q (want one of %s)", name, strings.Join(lossNames[:], ", "))
}

// Params selects a loss and its hyper-parameters.
type Params struct {
	// Loss is the loss to compute.
	Loss Loss
	// Temperature is tau > 0; similarities are z_i . z_j / tau.
	Temperature float64
	// Epsilon is the margin of eps-SupInfoNCE; the other losses ignore it.
	Epsilon float64
	// BaseTemperature is SupCon's b: the loss is multiplied by tau / b.
	// Zero means b = tau (factor 1), as the SINCERE authors set it; the
	// other losses ignore it.
	BaseTemperature float64
}

// Validate reports the first parameter that is out of range.
func (p Params) Validate() error {
	if p.Loss < SupCon || p.Loss > EpsSupInfoNCE {
		return fmt.Errorf("unknown loss %d", int(p.Loss))
	}
	if !(p.Temperature > 0) || math.IsInf(p.Temperature, 0) {
		return fmt.Errorf("temperature must be a finite number > 0, got %v", p.Temperature)
	}
	if math.IsNaN(p.Epsilon) || math.IsInf(p.Epsilon, 0) {
		return fmt.Errorf("epsilon must be finite, got %v", p.Epsilon)
	}
	if p.BaseTemperature < 0 || math.IsNaN(p.BaseTemperature) || math.IsInf(p.BaseTemperature, 0) {
		return fmt.Errorf("base temperature must be a finite number > 0 (or 0 for the temperature), got %v", p.BaseTemperature)
	}
	return nil
}

// Margin returns the margin the loss uses: Epsilon for eps-SupInfoNCE, 0 otherwise.
func (p Params) Margin() float64 {
	if p.Loss == EpsSupInfoNCE {
		return p.Epsilon
	}
	return 0
}

// Scale returns the factor applied to the loss and its gradient: tau / b for
// SupCon with a base temperature, 1 otherwise.
func (p Params) Scale() float64 {
	if p.Loss == SupCon && p.BaseTemperature > 0 {
		return p.Temperature / p.BaseTemperature
	}
	return 1
}

// Result is what a loss evaluation reports besides the gradient.
type Result struct {
	// Loss is the mean over anchors of the mean over each anchor's positives.
	Loss float64
	// Anchors is |A|, the number of rows with at least one positive.
	Anchors int
}

// ErrNoAnchors is returned when no row has a positive (every label occurs
// once), so the loss is undefined.
var ErrNoAnchors = errors.New("no anchor has a positive: every label occurs only once in the batch")

// CheckInputs validates the shapes and values of a loss evaluation: n >= 1
// rows of d >= 1 finite values, one label per row.
func CheckInputs[F float32 | float64](z []F, n, d int, labels []int) error {
	if err := CheckShapes(len(z), n, d, labels); err != nil {
		return err
	}
	for i, v := range z {
		if err := CheckFinite(float64(v), i, d); err != nil {
			return err
		}
	}
	return nil
}

// CheckFinite reports element i of an embedding matrix of width d that is
// NaN or infinite.
func CheckFinite(v float64, i, d int) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("embedding row %d column %d is %v", i/d, i%d, v)
	}
	return nil
}

// CheckShapes validates the shapes of a loss evaluation.
func CheckShapes(values, n, d int, labels []int) error {
	if n < 1 || d < 1 {
		return fmt.Errorf("embeddings must have at least one row and one column, got %d x %d", n, d)
	}
	if values != n*d {
		return fmt.Errorf("embeddings hold %d values, want %d x %d = %d", values, n, d, n*d)
	}
	if len(labels) != n {
		return fmt.Errorf("got %d labels for %d embeddings", len(labels), n)
	}
	return nil
}
