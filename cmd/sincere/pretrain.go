package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/dataset"
	"github.com/sincere-ml/sincere/internal/experiment"
)

func newPretrainCmd(e *env) *cobra.Command {
	var (
		cfgPath, method, out, device string
		seed                         uint64
		resume, waitLock             bool
		sets                         []string
	)
	cmd := &cobra.Command{
		Use:   "pretrain --config C.yaml [--method M] [--seed S] [--out DIR] [--resume] [--set key=value]...",
		Short: "Pretrain an encoder with a contrastive loss (or the cross-entropy baseline)",
		Long: `Pretrain an encoder as a YAML configuration describes (every key is listed in
configs/README.md), with one method and one seed, into

  OUT/<config name>/<method>-seed<S>/
      config.yaml     the resolved configuration
      metrics.jsonl   loss, learning rate and images/s per logging step and epoch
      checkpoint.gob  weights, optimiser state and position (written atomically)
      model.gob       the final model

Settings are layered: the file, then the method's overrides in it, then
SINCERE_* environment variables (SINCERE_TRAIN_LR sets train.lr), then --set.
Ctrl-C or SIGTERM writes a checkpoint before exiting; --resume continues from
the checkpoint and ends with the same weights as an uninterrupted run.

The run directory is locked while it trains (RUN/lock names the host and
pid), also against machines that share OUT: a second process fails at once
naming the holder, or waits with --wait-lock. A lock left by a process that
died is taken over (at once on the same host; on another host two minutes
after its last heartbeat).`,
		Example: `  sincere pretrain --config configs/quick.yaml --method sincere
  sincere pretrain --config configs/quick.yaml --method supcon --seed 2 --set train.epochs=1
  sincere pretrain --config configs/quick.yaml --method sincere --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if device != "" {
				sets = append(sets, "train.device="+device)
			}
			cfg, method, err := experiment.LoadMethod(cfgPath, method, sets)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("seed") {
				seed = cfg.Seeds[0]
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			dir, err := experiment.Pretrain(ctx, cfg, experiment.PretrainOptions{Method: method, Seed: seed, Out: out,
				Resume: resume, WaitLock: waitLock, Reporter: e.trainReporter(), Fetch: &dataset.Fetcher{Progress: e.byteProgress()}})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "experiment configuration (YAML); see configs/README.md")
	f.StringVar(&method, "method", "", "supcon, sincere, eps-supinfonce or ce (default: the config's first method, with its overrides)")
	f.Uint64Var(&seed, "seed", 1, "seed of initialisation, sampling and augmentation (default: the config's first seed)")
	f.StringVar(&out, "out", "runs", "folder for the run directories")
	f.StringVar(&device, "device", "", "cpu, cuda or auto (sets train.device)")
	f.BoolVar(&resume, "resume", false, "continue the run from its checkpoint")
	f.BoolVar(&waitLock, "wait-lock", false, waitLockHelp)
	f.StringArrayVar(&sets, "set", nil, "override a key, e.g. --set train.lr=0.05 (repeatable)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// waitLockHelp is the --wait-lock flag's help.
const waitLockHelp = "wait for another process using the run directory to finish, instead of failing"

// trainReporter shows training progress: a bar per epoch with the loss and
// images/s on a terminal, a log line every few seconds otherwise.
func (e *env) trainReporter() experiment.Reporter {
	return &reporter{e: e}
}

type reporter struct {
	e             *env
	bar           *progressbar.ProgressBar
	epoch, epochs int
	batches       int
	lastLine      time.Time
}

func (r *reporter) Logf(format string, args ...any) {
	if r.bar != nil {
		_ = r.bar.Clear()
	}
	r.e.logf(format, args...)
}

func (r *reporter) StartEpoch(epoch, epochs, from, batches int) {
	r.epoch, r.epochs, r.batches, r.lastLine = epoch, epochs, batches, time.Now()
	if r.e.quiet || !r.e.interactive {
		return
	}
	r.bar = progressbar.NewOptions(batches, progressbar.OptionSetWriter(r.e.stderr), progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(25), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch, epochs)))
	_ = r.bar.Set(from)
}

func (r *reporter) Step(batch int, loss, lr, rate float64) {
	if r.bar != nil {
		r.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f %.0f img/s", r.epoch, r.epochs, loss, rate))
		_ = r.bar.Set(batch)
		return
	}
	if time.Since(r.lastLine) >= 5*time.Second {
		r.e.logf("epoch %d/%d batch %d/%d loss %.4f lr %.4g %.0f images/s", r.epoch, r.epochs, batch, r.batches, loss, lr, rate)
		r.lastLine = time.Now()
	}
}

func (r *reporter) EndEpoch(epoch int, loss, rate float64) {
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
	}
	r.e.logf("epoch %d/%d: mean loss %.4f, %.0f images/s", epoch, r.epochs, loss, rate)
}
