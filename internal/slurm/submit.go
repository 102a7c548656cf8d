package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Submitted says what Submit handed to Slurm.
type Submitted struct {
	// TasksJob is the job array's id, and Array the indices it runs;
	// both empty when no task was left to run.
	TasksJob, Array string
	// AggregateJob is the aggregation's job id.
	AggregateJob string
}

// Submit submits tasks.sbatch for the given task indices (all of its
// array when nil; none when empty), then aggregate.sbatch, which starts
// once every task has succeeded and is cancelled by Slurm if one fails
// (--kill-on-invalid-dep). It runs sbatch --parsable.
func Submit(ctx context.Context, j *Job, tasksPath, aggregatePath string, indices []int) (Submitted, error) {
	if _, err := exec.LookPath("sbatch"); err != nil {
		return Submitted{}, errors.New("sbatch not found: --submit runs on a Slurm login node (without --submit, sincere slurm writes the scripts only)")
	}
	var s Submitted
	if indices == nil || len(indices) > 0 {
		s.Array = j.Array(indices)
		id, err := sbatch(ctx, "--array="+s.Array, tasksPath)
		if err != nil {
			return s, err
		}
		s.TasksJob = id
	}
	args := []string{aggregatePath}
	if s.TasksJob != "" {
		args = []string{"--dependency=afterok:" + s.TasksJob, "--kill-on-invalid-dep=yes", aggregatePath}
	}
	id, err := sbatch(ctx, args...)
	if err != nil {
		if s.TasksJob != "" {
			return s, fmt.Errorf("%w (the tasks were submitted as job %s)", err, s.TasksJob)
		}
		return s, err
	}
	s.AggregateJob = id
	return s, nil
}

// sbatch runs sbatch --parsable with args and returns the job id.
func sbatch(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "sbatch", append([]string{"--parsable"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("sbatch %s: %s", strings.Join(args, " "), msg)
	}
	// --parsable prints "jobid" or "jobid;cluster".
	id, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), ";")
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("sbatch %s: no job id in its output %q", strings.Join(args, " "), stdout.String())
	}
	return id, nil
}
