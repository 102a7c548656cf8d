// Command sincere pretrains image encoders with the SINCERE or SupCon loss,
// probes them, and compares the methods; see `sincere --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sincere-ml/sincere/internal/experiment"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	interactive := term.IsTerminal(int(os.Stderr.Fd()))
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, interactive))
}

// run executes the command line and returns the process exit status;
// errors are printed as one line on stderr. A panic (a bug: no input
// should cause one) is reported the same way, with a request to report it,
// rather than as a stack trace.
func run(args []string, stdout, stderr io.Writer, interactive bool) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "sincere: internal error: %s; please report it with the command line that caused it (sincere version %s)\n",
				oneLine(fmt.Sprint(p)), version)
			code = 2
		}
	}()
	root := newRoot(&env{stdout: stdout, stderr: stderr, interactive: interactive})
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "sincere: "+oneLine(err.Error()))
		if errors.Is(err, experiment.ErrInterrupted) || errors.Is(err, context.Canceled) {
			return 130 // as a shell reports a process stopped by Ctrl-C
		}
		return 1
	}
	return 0
}

// env is what every command writes to and knows about its terminal.
type env struct {
	stdout, stderr io.Writer
	// interactive is true when stderr is a terminal: progress bars then,
	// plain log lines otherwise.
	interactive bool
	// quiet silences progress output.
	quiet bool
}

// logf prints a progress line on stderr unless --quiet.
func (e *env) logf(format string, args ...any) {
	if !e.quiet {
		fmt.Fprintf(e.stderr, format+"\n", args...)
	}
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "sincere",
		Short: "Supervised contrastive learning experiments: SINCERE vs SupCon",
		Long: `sincere pretrains an image encoder with the SINCERE loss or the SupCon loss it
corrects, probes the encoder, and compares the methods with confidence
intervals. Its core is a fused SINCERE/SupCon kernel that never builds the
N x N similarity matrix, so large batches fit in memory and run fast.

Start with ` + "`sincere loss --help`" + ` to evaluate a loss on saved embeddings, or
` + "`sincere bench loss`" + ` to measure the fused loss on this machine.`,
		Example: `  sincere loss --loss sincere --temperature 0.1 --embeddings z.npy --labels y.npy
  sincere bench loss --n 1024 --n 8192`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.PersistentFlags().BoolVarP(&e.quiet, "quiet", "q", false, "no progress bars or progress lines")
	root.AddCommand(newVersionCmd(e), newLossCmd(e), newDataCmd(e), newPretrainCmd(e), newProbeCmd(e), newCompareCmd(e), newSlurmCmd(e), newEmbedCmd(e), newExportCmd(e), newAnalyzeCmd(e), newBenchCmd(e))
	return root
}

// oneLine folds a multi-line message (cobra's suggestions, say) into one line.
func oneLine(s string) string {
	fields := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' || r == '\r' })
	for i, f := range fields {
		fields[i] = strings.Join(strings.Fields(f), " ")
	}
	return strings.Join(fields, "; ")
}
