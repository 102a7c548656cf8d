package experiment

import "math"

// learningRate is the rate of step (0-based) of total: a linear warm-up
// from lr/warmup to lr over the first warmup steps, then a cosine decay to
// lr*minRatio at the last step, as the SupCon and SINCERE code schedule it.
func learningRate(t TrainConfig, step, total int) float64 {
	if step < t.WarmupSteps {
		return t.LR * float64(step+1) / float64(t.WarmupSteps)
	}
	rest := total - t.WarmupSteps
	if rest <= 1 {
		return t.LR
	}
	progress := float64(step-t.WarmupSteps) / float64(rest-1)
	low := t.LR * t.MinLRRatio
	return low + (t.LR-low)*(1+math.Cos(math.Pi*progress))/2
}
