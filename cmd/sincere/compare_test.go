package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareTaskFlags checks the task flags of compare without training:
// the plan of a new comparison, an aggregate with nothing done, and flags
// that exclude each other.
func TestCompareTaskFlags(t *testing.T) {
	out := t.TempDir()
	base := []string{"compare", "--config", filepath.Join("..", "..", "configs", "quick.yaml"), "--out", out, "--set", "data.dataset=synthetic"}
	code, stdout, stderr := sincere(append(base, "--plan")...)
	if code != 0 {
		t.Fatal(stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[0], "TASK") || !strings.Contains(stderr, "9 tasks: 9 missing") {
		t.Fatalf("plan:\n%s\n%s", stdout, stderr)
	}
	if f := strings.Fields(lines[9]); len(f) != 5 || f[0] != "8" || f[1] != "ce" || f[2] != "3" || f[3] != "missing" || f[4] != filepath.Join(out, "quick", "ce-seed3") {
		t.Errorf("last task: %q", lines[9])
	}
	cases := []struct {
		args []string
		want string
	}{
		{append(base, "--aggregate"), "9 of 9 runs are not done: task 0 " + filepath.Join(out, "quick", "supcon-seed1") + " (missing)"},
		{append(base, "--task", "9"), "tasks 0 to 8"},
		{append(base, "--plan", "--aggregate"), "exclude each other"},
		{append(base, "--task", "0", "--plan"), "exclude each other"},
	}
	for _, c := range cases {
		code, _, stderr := sincere(c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q should be one line naming %q", c.args[len(base):], code, stderr, c.want)
		}
	}
}
