package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// deps lists the packages the sincere command links with the given tags.
func deps(t *testing.T, tags string) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := exec.Command("go", append(args, ".")...).Output()
	if err != nil {
		t.Skipf("go list: %v (no go tool here?)", err)
	}
	return strings.Fields(string(out))
}

// TestBuildsKeepCUDAApart checks the two traps of the two builds: the
// default binary must not link gorgonia.org/cu (its init exits the process
// where there is no NVIDIA driver), and the gpu build must link it without
// gorgonia's own cuda-tagged code (which needs cuDNN).
func TestBuildsKeepCUDAApart(t *testing.T) {
	if d := deps(t, ""); slices.Contains(d, "gorgonia.org/cu") {
		t.Error("the default build links gorgonia.org/cu")
	}
	gpu := deps(t, "gpu")
	if !slices.Contains(gpu, "gorgonia.org/cu") {
		t.Error("the gpu build does not link gorgonia.org/cu")
	}
	if slices.Contains(gpu, "gorgonia.org/cu/dnn") {
		t.Error("the gpu build links gorgonia.org/cu/dnn (cuDNN)")
	}
}
