package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/report"
	"github.com/sincere-ml/sincere/internal/runlock"
)

// A comparison is a list of tasks, one per method and seed, each of which
// pretrains and probes one run; then one aggregation reads every run's
// probe and writes the tables and figures. The tasks are independent: they
// may run in any order, in separate processes, on machines that share the
// output folder (a Slurm job array does that), and the aggregation gives
// the same files as a plain Compare because every run is deterministic.

// TaskState says how far a task has got.
type TaskState string

// Task states.
const (
	// TaskDone: the run is trained and probed with the current settings.
	TaskDone TaskState = "done"
	// TaskPartial: the run has a checkpoint, or is trained but not (or
	// not freshly) probed; running the task continues it.
	TaskPartial TaskState = "partial"
	// TaskMissing: nothing of the run exists yet.
	TaskMissing TaskState = "missing"
	// TaskChanged: the run was trained with other training settings;
	// running the task fails until the run is removed.
	TaskChanged TaskState = "changed"
)

// Task is one run of a comparison.
type Task struct {
	// Index is the task's place in the plan: methods in the config's
	// order, and within a method its seeds in order.
	Index  int
	Method string
	Seed   uint64
	// Dir is the run directory.
	Dir   string
	State TaskState
	// Detail says more about a state that is not done.
	Detail string
	// Holder is the process that holds the run's lock, nil when none does.
	Holder *runlock.Holder
}

// plan is a comparison's configuration and tasks, with the caches that let
// one process load each data set once over many tasks.
type plan struct {
	cfgPath string
	opt     CompareOptions
	rep     Reporter
	base    Config
	// cfgs holds each method's configuration (its overrides applied).
	cfgs      map[string]Config
	tasks     []Task
	trainSets map[string]*dataset.Dataset
	probeSets setCache
}

// newPlan loads a comparison's configuration and lists its tasks (their
// states are not looked at).
func newPlan(cfgPath string, opt CompareOptions) (*plan, error) {
	base, err := Load(cfgPath, "", opt.Sets)
	if err != nil {
		return nil, err
	}
	p := &plan{cfgPath: cfgPath, opt: opt, rep: opt.Reporter, base: base, cfgs: map[string]Config{},
		trainSets: map[string]*dataset.Dataset{}, probeSets: setCache{}}
	if p.rep == nil {
		p.rep = nopReporter{}
	}
	for _, method := range base.Methods {
		cfg, err := Load(cfgPath, method, opt.Sets)
		if err != nil {
			return nil, err
		}
		p.cfgs[method] = cfg
		for _, seed := range base.Seeds {
			p.tasks = append(p.tasks, Task{Index: len(p.tasks), Method: method, Seed: seed,
				Dir: RunDir(opt.Out, base.Name, method, seed)})
		}
	}
	return p, nil
}

// task returns task i, or an error naming the valid range.
func (p *plan) task(i int) (Task, error) {
	if i < 0 || i >= len(p.tasks) {
		return Task{}, fmt.Errorf("--task %d: this comparison has tasks 0 to %d (%d methods x %d seeds)",
			i, len(p.tasks)-1, len(p.base.Methods), len(p.base.Seeds))
	}
	return p.tasks[i], nil
}

// loadTrain is LoadTrain with the plan's cache: each training set is read
// once however many tasks train on it.
func (p *plan) loadTrain(ctx context.Context, d DataConfig, fetch *dataset.Fetcher) (*dataset.Dataset, error) {
	key := fmt.Sprintf("%s|%s|%d|%v|%d|%d", d.Dataset, d.Root, d.Subset, d.Classes, d.ImageSize, d.Channels)
	if s, ok := p.trainSets[key]; ok {
		return s, nil
	}
	s, err := LoadTrain(ctx, d, fetch)
	if err == nil {
		p.trainSets[key] = s
	}
	return s, err
}

// run runs task i: pretrain (reusing a finished run, resuming a partial
// one), then probe (reusing a probe of the same model and settings).
func (p *plan) run(ctx context.Context, i int) (probed, error) {
	t, err := p.task(i)
	if err != nil {
		return probed{}, err
	}
	cfg := p.cfgs[t.Method]
	ctx, unlock, err := lockRun(ctx, t.Dir, fmt.Sprintf("sincere compare, task %d", t.Index), p.opt.WaitLock, p.rep)
	if err != nil {
		return probed{}, err
	}
	defer unlock()
	dir, err := Pretrain(ctx, cfg, PretrainOptions{Method: t.Method, Seed: t.Seed, Out: p.opt.Out, Resume: true,
		ResumeHint: "run the comparison (or its task) again to continue it", Reporter: p.rep, Fetch: p.opt.Fetch,
		loadTrain: p.loadTrain, locked: true})
	if err != nil {
		return probed{}, err
	}
	pr, outcomes, err := reuseProbe(dir, cfg, t.Method, t.Seed)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			p.rep.Logf("%s: %v; probing again", dir, err)
		}
		if pr, outcomes, err = probe(ctx, dir, nil, p.opt.Fetch, p.rep, p.probeSets); err != nil {
			return probed{}, err
		}
	}
	return probed{run: report.Run{Method: t.Method, Seed: t.Seed, Dir: dir}, probe: pr, outcomes: outcomes}, nil
}

// look finds task i's state, and its probe when it is done; the detail
// names the holder of the run's lock, if any.
func (p *plan) look(i int) (Task, probed) {
	t, r := p.state(i)
	if h, err := runlock.Inspect(t.Dir); err == nil && h != nil {
		t.Holder = h
		if t.State == TaskDone {
			t.Detail = "in use by " + h.String()
		} else {
			t.Detail = "running: in use by " + h.String()
		}
	}
	return t, r
}

// state finds task i's state, and its probe when it is done.
func (p *plan) state(i int) (Task, probed) {
	t := p.tasks[i]
	cfg := p.cfgs[t.Method]
	if !Finished(t.Dir) {
		if fileExists(filepath.Join(t.Dir, CheckpointFile)) {
			t.State, t.Detail = TaskPartial, "has a checkpoint; its task resumes it"
		} else {
			t.State = TaskMissing
		}
		return t, probed{}
	}
	if err := checkRunConfig(t.Dir, cfg); err != nil {
		t.State, t.Detail = TaskChanged, "trained with other settings; remove it to train it again"
		return t, probed{}
	}
	pr, outcomes, err := reuseProbe(t.Dir, cfg, t.Method, t.Seed)
	if err != nil {
		t.State, t.Detail = TaskPartial, "trained, not probed with the current settings"
		return t, probed{}
	}
	t.State = TaskDone
	return t, probed{run: report.Run{Method: t.Method, Seed: t.Seed, Dir: t.Dir}, probe: pr, outcomes: outcomes}
}

// Plan lists a comparison's tasks with their states, in task order.
func Plan(cfgPath string, opt CompareOptions) ([]Task, error) {
	p, err := newPlan(cfgPath, opt)
	if err != nil {
		return nil, err
	}
	tasks := make([]Task, len(p.tasks))
	for i := range p.tasks {
		tasks[i], _ = p.look(i)
	}
	return tasks, nil
}

// RunTask runs task i of a comparison alone: it pretrains the run (resuming
// a partial one) and probes it, and returns the task as it now stands.
func RunTask(ctx context.Context, cfgPath string, i int, opt CompareOptions) (Task, error) {
	p, err := newPlan(cfgPath, opt)
	if err != nil {
		return Task{}, err
	}
	if _, err := p.run(ctx, i); err != nil {
		return p.tasks[min(max(i, 0), len(p.tasks)-1)], err
	}
	t, _ := p.look(i)
	return t, nil
}

// Aggregate writes a comparison's tables and figures from its runs' probes,
// as Compare does, but trains and probes nothing: a run that is not done
// is an error naming it (and every other one that is not).
func Aggregate(ctx context.Context, cfgPath string, opt CompareOptions) (*Comparison, error) {
	p, err := newPlan(cfgPath, opt)
	if err != nil {
		return nil, err
	}
	var runs []probed
	var notDone []string
	for i := range p.tasks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, r := p.look(i)
		if t.State != TaskDone {
			notDone = append(notDone, fmt.Sprintf("task %d %s (%s)", t.Index, t.Dir, t.State))
			continue
		}
		runs = append(runs, r)
	}
	if len(notDone) > 0 {
		return nil, fmt.Errorf("cannot aggregate: %d of %d runs are not done: %s; run their tasks first (sincere compare --task I)",
			len(notDone), len(p.tasks), strings.Join(notDone, ", "))
	}
	return p.aggregate(runs)
}

// checkRunConfig fails when a finished run was trained with training
// settings other than cfg's.
func checkRunConfig(dir string, cfg Config) error {
	old, err := readRunConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return err
	}
	want, err := cfg.runDigest()
	if err != nil {
		return err
	}
	if d, err := old.runDigest(); err != nil || d != want {
		return errRunChanged
	}
	return nil
}

// errRunChanged: a run's training settings differ from the configuration's.
var errRunChanged = errors.New("the configuration changed since this run was trained")
